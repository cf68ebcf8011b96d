#!/bin/sh
# Build a minimal Debian base image without any registry: debootstrap a tree, import it into Docker.
# Usage: mkbase.sh SUITE MIRROR SECURITY_MIRROR TAG [CA_BUNDLE]
set -eu
suite=$1 mirror=$2 secmirror=$3 tag=$4 ca=${5:-}

command -v debootstrap >/dev/null || { echo "debootstrap is missing on this host (the docker_host role installs it)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/prism-base.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root

echo "debootstrap $suite from $mirror"
debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $secmirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cat >"$root/etc/apt/apt.conf.d/90prism" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
APT
if [ -n "$ca" ]; then
    cp "$ca" "$root/usr/local/share/ca-certificates/prism-ca.crt"
    chroot "$root" update-ca-certificates >/dev/null
fi
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/*

tar -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $suite ($mirror)" - "$tag"
echo "imported $tag"
