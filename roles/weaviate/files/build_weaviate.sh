#!/bin/sh
# Build weaviate-server from the Go module proxy with the host's Go (which trusts the host's proxy), as a
# static binary, and put it into the staged image context.
# Usage: build_weaviate.sh GO VERSION CACHE_DIR OUT_BINARY [CA_BUNDLE] [GOPROXY]
# CACHE_DIR holds the module cache, the build cache and the finished binary per version
# (CACHE_DIR/bin/weaviate-server-VERSION): a warm run with the same VERSION copies that binary and runs
# no Go command at all. The build is reproducible (-trimpath, no build id, no VCS stamp, CGO off), so the
# bytes, and with them the image tag's content hash, are the same on every machine with the same Go.
set -eu
go=$1 version=$2 cache=$3 out=$4 ca=${5:-} proxy=${6:-}

cached=$cache/bin/weaviate-server-$version
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

[ -x "$go" ] || command -v "$go" >/dev/null || {
	echo "Go is missing on this host ($go): install Go >= 1.25 and set weaviate_go, or set prism_image_sources.weaviate to registry or archive" >&2
	exit 1
}
export GOMODCACHE="$cache/mod" GOCACHE="$cache/build" GOPATH="$cache/gopath"
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
echo "weaviate-server $version: resolving modules ($(date -u +%T))"
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
