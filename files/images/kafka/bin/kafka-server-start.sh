#!/usr/bin/env bash
# Start the Kafka server (broker and/or controller) with a server.properties file, in the foreground.
set -e
if [ $# -lt 1 ]; then
	echo "USAGE: $0 server.properties [--override property=value]*" >&2
	exit 1
fi
base_dir=$(cd "$(dirname "$0")" && pwd)
export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/etc/kafka/docker/log4j2.properties}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
exec "$base_dir/kafka-run-class.sh" kafka.Kafka "$@"
