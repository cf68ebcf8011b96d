#!/bin/sh
# Build one Go binary on the Docker host (which trusts the proxy) from the main module in CONTEXT (its
# go.mod, go.sum and main package) into CONTEXT/bin/NAME.
# Usage: go_build.sh GO CONTEXT NAME CACHE_DIR MARKER [CA_BUNDLE]
# GO is the go of the pinned release prism_go_toolchain (fetched by the prism role's go_toolchain.yml).
# The module and build caches under CACHE_DIR persist: a warm run with the same go.mod and toolchain does
# nothing (the caller skips it by MARKER), and a rebuild of an unchanged module downloads nothing.
set -eu
go=$1 ctx=$2 name=$3 cache=$4 marker=$5 ca=${6:-}
[ -n "$go" ] && [ -x "$go" ] || {
	echo "No pinned Go toolchain at '$go': the prism role's go_toolchain.yml fetches it with exporters_go" \
		"(Debian's golang-go), or set prism_image_sources.$name to registry or archive" >&2
	exit 1
}
[ -n "$ca" ] && export SSL_CERT_FILE="$ca"
# GOTOOLCHAIN=local: $go is the pinned release; a module that wants a newer Go fails, naming it.
export GOMODCACHE="$cache/mod" GOCACHE="$cache/build" GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local
cd "$ctx"
start=$(date +%s)
echo "downloading the modules of $name's go.mod (GOPROXY=$("$go" env GOPROXY))"
if ! "$go" mod download 2>"$ctx/.go-error"; then
	echo "The Go module proxy did not deliver the modules of $name's go.mod: $(tail -c 400 "$ctx/.go-error")." >&2
	echo "Fix: make the module available through GOPROXY, or set prism_image_sources.$name to registry or archive, or exporters_${name%_exporter}_enabled: false." >&2
	exit 1
fi
rm -f "$ctx/.go-error"
mkdir -p bin
echo "compiling $name (a minute or more on 2 cores when the build cache is cold)"
"$go" build -trimpath -ldflags "-s -w" -o "bin/$name" .
touch "bin/$marker"
echo "built $name in $(( $(date +%s) - start )) s"
