#!/bin/sh
# Resolve the Kafka image's jars with Maven on the Docker host (which trusts the proxy), into LIB_DIR.
# Usage: fetch_jars.sh POM LIB_DIR LOCAL_REPOSITORY MARKER [CA_BUNDLE]
# The local repository is a persistent cache: a second resolution of the same POM downloads nothing.
# LIB_DIR is replaced as a whole (no stale jars of another version) and gets the MARKER file last, so an
# interrupted run is redone.
set -eu
pom=$1 lib=$2 repo=$3 marker=$4 ca=${5:-}

command -v mvn >/dev/null || {
	echo "mvn is missing on this host: install Debian's maven (docker_host_packages), or set prism_image_sources.kafka to registry or archive" >&2
	exit 1
}
mkdir -p "$(dirname "$lib")" "$repo"
work=$(mktemp -d "$(dirname "$lib")/.lib.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "$ca" ]; then
	# Java reads no PEM trust store: make a PKCS12 one of the JDK's CAs plus every certificate of the bundle.
	store=$work/truststore.p12
	java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
	keytool -importkeystore -noprompt -srckeystore "$java_home/lib/security/cacerts" -srcstorepass changeit \
		-destkeystore "$store" -deststoretype PKCS12 -deststorepass changeit >/dev/null 2>&1 || true
	awk -v dir="$work" '/BEGIN CERTIFICATE/ {n++; f = dir "/ca-" n ".pem"} f {print > f} /END CERTIFICATE/ {f = ""}' "$ca"
	for pem in "$work"/ca-*.pem; do
		[ -f "$pem" ] || continue
		keytool -importcert -noprompt -trustcacerts -alias "prism-$(basename "$pem" .pem)" -file "$pem" \
			-keystore "$store" -storetype PKCS12 -storepass changeit >/dev/null
	done
	MAVEN_OPTS="-Djavax.net.ssl.trustStore=$store -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword=changeit ${MAVEN_OPTS:-}"
	export MAVEN_OPTS
fi

start=$(date +%s)
mvn -B -q -f "$pom" -Dmaven.repo.local="$repo" dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$work/lib"
count=$(find "$work/lib" -name '*.jar' | wc -l)
[ "$count" -gt 0 ] || { echo "Maven resolved no jars from $pom" >&2; exit 1; }
touch "$work/lib/$marker"
rm -rf "$lib"
mv "$work/lib" "$lib"
echo "resolved $count jars into $lib in $(( $(date +%s) - start )) s"
