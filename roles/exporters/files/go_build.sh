#!/bin/sh
# Build one Go binary on the Docker host (which trusts the proxy) from the wrapper module in CONTEXT into
# CONTEXT/bin/NAME. Usage: go_build.sh GO CONTEXT NAME PACKAGE CACHE_DIR MARKER [CA_BUNDLE]
# GO is the go of the pinned release prism_go_toolchain (fetched by the prism role's go_toolchain.yml).
# The module and build caches under CACHE_DIR persist: a warm run with the same go.mod and toolchain does
# nothing (the caller skips it by MARKER), and a rebuild of an unchanged module downloads nothing.
set -eu
go=$1 ctx=$2 name=$3 pkg=$4 cache=$5 marker=$6 ca=${7:-}
[ -n "$go" ] && [ -x "$go" ] || {
	echo "No pinned Go toolchain at '$go': the prism role's go_toolchain.yml fetches it with exporters_go" \
		"(Debian's golang-go), or set prism_image_sources.$name to registry or archive" >&2
	exit 1
}
[ -n "$ca" ] && export SSL_CERT_FILE="$ca"
# GOTOOLCHAIN=local: $go is the pinned release; a module that wants a newer Go fails, naming it.
export GOMODCACHE="$cache/mod" GOCACHE="$cache/build" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
cd "$ctx"
start=$(date +%s)
if ! "$go" mod download "$pkg" 2>"$ctx/.go-error" && ! "$go" build -trimpath -o /dev/null "$pkg" 2>>"$ctx/.go-error"; then
	echo "The Go module proxy did not deliver $pkg for $name: $(tail -c 400 "$ctx/.go-error")." >&2
	echo "Fix: make the module available through GOPROXY, or set prism_image_sources.$name to registry or archive, or exporters_${name%_exporter}_enabled: false." >&2
	exit 1
fi
rm -f "$ctx/.go-error"
mkdir -p bin
"$go" build -trimpath -ldflags "-s -w" -o "bin/$name" "$pkg"
touch "bin/$marker"
echo "built $name in $(( $(date +%s) - start )) s"
