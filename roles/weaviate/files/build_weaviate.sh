#!/bin/sh
# Build weaviate-server from the Go module proxy on the Docker host (which trusts the host's proxy), as a
# static binary, and put it into the staged image context.
# Usage: build_weaviate.sh GO TOOLCHAIN VERSION CACHE_DIR OUT_BINARY [CA_BUNDLE] [GOPROXY]
# GO is the go of the pinned release TOOLCHAIN (prism_go_toolchain, fetched by the prism role's
# go_toolchain.yml); it may be empty when the binary is cached.
# CACHE_DIR holds the module cache, the build cache and the finished binary per version and toolchain
# (CACHE_DIR/bin/weaviate-server-VERSION-TOOLCHAIN): a warm run copies that binary and runs no Go command
# at all. The build is reproducible (-trimpath, no build id, no VCS stamp, CGO off), so the bytes, and with
# them the image tag's content hash, are the same on every machine with the same toolchain.
set -eu
go=$1 toolchain=$2 version=$3 cache=$4 out=$5 ca=${6:-} proxy=${7:-}

cached=$cache/bin/weaviate-server-$version-$toolchain
if [ -x "$cached" ]; then
	if ! cmp -s "$cached" "$out"; then
		mkdir -p "$(dirname "$out")"
		cp "$cached" "$out.tmp" && mv "$out.tmp" "$out"
		echo "weaviate-server $version: cached binary copied into the context"
	else
		echo "weaviate-server $version: cached binary already in the context"
	fi
	exit 0
fi

[ -n "$go" ] && [ -x "$go" ] && [ "$(GOTOOLCHAIN=local "$go" env GOVERSION)" = "$toolchain" ] || {
	echo "No Go $toolchain at '$go' on this host: the prism role's go_toolchain.yml fetches it with weaviate_go" \
		"(Debian's golang-go), or set prism_image_sources.weaviate to registry or archive" >&2
	exit 1
}
export GOMODCACHE="$cache/mod" GOCACHE="$cache/build" GOPATH="$cache/gopath"
# GOTOOLCHAIN=local: $go is the pinned release; a module that wants a newer Go fails here, naming it,
# instead of switching to a toolchain nobody pinned.
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local GOWORK=off
[ -n "$ca" ] && export SSL_CERT_FILE="$ca"
[ -n "$proxy" ] && export GOPROXY="$proxy"

# A wrapper module that requires exactly the pinned Weaviate release; its own go.mod decides the rest.
work=$cache/module-$version
mkdir -p "$work" "$cache/bin"
cat > "$work/go.mod" <<GOMOD
module prism.local/weaviate-build

go 1.25

require github.com/weaviate/weaviate $version
GOMOD
cat > "$work/tools.go" <<'GOSRC'
//go:build tools

package tools

import _ "github.com/weaviate/weaviate/cmd/weaviate-server"
GOSRC

start=$(date +%s)
cd "$work"
echo "weaviate-server $version: resolving modules, Go $toolchain ($(date -u +%T))"
"$go" get github.com/weaviate/weaviate/cmd/weaviate-server@"$version"
echo "weaviate-server $version: modules in $(( $(date +%s) - start )) s; compiling, several minutes when cold ($(date -u +%T))"
"$go" build -trimpath -ldflags "-s -w -buildid= -X github.com/weaviate/weaviate/usecases/build.Version=${version#v}" \
	-o "$cached.tmp" \
	github.com/weaviate/weaviate/cmd/weaviate-server
"$cached.tmp" --help >/dev/null
mv "$cached.tmp" "$cached"
echo "weaviate-server $version: built in $(( $(date +%s) - start )) s ($(du -h "$cached" | cut -f1))"
mkdir -p "$(dirname "$out")"
cp "$cached" "$out.tmp" && mv "$out.tmp" "$out"
