#!/bin/sh
# Fetch pgAdmin 4 and its dependencies as wheels for the image's Python (cp313, manylinux x86_64) on the
# Docker host, whose pip trusts the proxy; the image installs them offline (pip --no-index).
# usage: fetch_pgadmin_wheels.sh <python> <dest dir> <python version> <marker> <ca bundle or ""> <sdist reqs> -- <reqs...>
#   <sdist reqs>: space-separated requirements that PyPI has only as sdists; they are pure Python and are
#   built here into py3-none-any wheels (pip wheel --no-deps), so the cp313 download below finds them.
set -eu
python=$1 dest=$2 pyver=$3 marker=$4 ca=$5 sdists=$6
shift 6
[ "$1" = -- ] && shift
if [ -n "$ca" ]; then export PIP_CERT="$ca"; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
work="$dest.tmp"
rm -rf "$work"
mkdir -p "$work/sdist"
# shellcheck disable=SC2086
"$python" -m pip download --quiet --no-deps --no-binary=:all: -d "$work/sdist" $sdists
"$python" -m pip wheel --quiet --no-deps --use-pep517 -w "$work" "$work"/sdist/*
rm -rf "$work/sdist"
"$python" -m pip download --quiet -d "$work" --find-links "$work" --only-binary=:all: \
  --python-version "$pyver" --implementation cp --abi "cp$(echo "$pyver" | tr -d .)" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  "$@"
touch "$work/$marker"
rm -rf "$dest"
mv "$work" "$dest"
