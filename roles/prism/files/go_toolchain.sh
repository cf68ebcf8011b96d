#!/bin/sh
# Make the pinned Go toolchain available on the Docker host and print the path of its `go` (last line).
# Usage: go_toolchain.sh GO TOOLCHAIN CACHE_DIR [CA_BUNDLE] [GOPROXY]
#   GO         any Go on the host, e.g. Debian's golang-go (/usr/bin/go: bookworm 1.19, trixie 1.24)
#   TOOLCHAIN  the Go release to build with, e.g. go1.26.11 (prism_go_toolchain)
#   CACHE_DIR  a Go module cache kept for toolchains only; a warm run downloads nothing
# The toolchain is the module golang.org/toolchain@v0.0.1-TOOLCHAIN.GOOS-GOARCH of the Go module proxy,
# verified against the checksum database like any module. Go >= 1.21 fetches it itself through
# GOTOOLCHAIN. Older Go (bookworm's 1.19) has no GOTOOLCHAIN: it downloads the same module with
# `go mod download` into the same place, and this script does what Go's own switch does after a download
# (cmd/go/internal/toolchain): execute bits on bin/, pkg/tool/ and lib/*/go_*_*_exec, then _go.mod -> go.mod.
set -eu
go=$1 toolchain=$2 cache=$3 ca=${4:-} proxy=${5:-}

[ -x "$go" ] || command -v "$go" >/dev/null 2>&1 || {
	echo "No Go at '$go' on this host. Fix: install Debian's golang-go (the docker_host role does: docker_host_packages)," \
		"or set prism_image_sources.<service> to registry or archive." >&2
	exit 1
}
case $toolchain in
go1.[0-9]*.[0-9]*) ;;
*)
	echo "prism_go_toolchain is '$toolchain'. Fix: set it to a Go release such as go1.26.11." >&2
	exit 1
	;;
esac

export GOMODCACHE="$cache" GOPATH="$cache/gopath" GOFLAGS="" GOWORK=off GO111MODULE=on
[ -n "$ca" ] && export SSL_CERT_FILE="$ca"
[ -n "$proxy" ] && export GOPROXY="$proxy"
mkdir -p "$cache"
cd "$cache" # outside any module: no go.mod decides anything here

goos=$(GOTOOLCHAIN=local "$go" env GOOS)
goarch=$(GOTOOLCHAIN=local "$go" env GOARCH)
module=golang.org/toolchain@v0.0.1-$toolchain.$goos-$goarch
root=$cache/$module
start=$(date +%s)
fetched=false
[ -x "$root/bin/go" ] || fetched=true

if [ -n "$(GOTOOLCHAIN=local "$go" env GOTOOLCHAIN)" ]; then
	# Go >= 1.21: any command under GOTOOLCHAIN=<release> runs that release, downloading it on first use.
	root=$(GOTOOLCHAIN=$toolchain "$go" env GOROOT)
elif $fetched; then
	GOTOOLCHAIN=local "$go" mod download "$module"
	find "$root/pkg/tool" -type f -exec chmod a+x {} +
	find "$root/lib" -type f -name 'go_?*_?*_exec' -exec chmod a+x {} +
	chmod a+x "$root/bin/gofmt" "$root"/bin/*
	# src/_go.mod last: its copy src/go.mod is Go's sign that the toolchain is complete.
	find "$root" -name _go.mod ! -path "$root/src/_go.mod" | while read -r gomod; do
		dir=$(dirname "$gomod")
		chmod u+w "$dir" && cp "$gomod" "$dir/go.mod" && chmod u-w "$dir"
	done
	chmod u+w "$root/src" && cp "$root/src/_go.mod" "$root/src/go.mod" && chmod u-w "$root/src"
fi

version=$(GOTOOLCHAIN=local "$root/bin/go" env GOVERSION)
[ "$version" = "$toolchain" ] || {
	echo "$root/bin/go is $version, not $toolchain" >&2
	exit 1
}
if $fetched; then
	echo "Go toolchain $toolchain: fetched by $("$go" version | cut -d' ' -f3) into $root in $(($(date +%s) - start)) s"
else
	echo "Go toolchain $toolchain: cached in $root"
fi
echo "$root/bin/go"
