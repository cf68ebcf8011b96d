#!/bin/sh
# Entrypoint of the built Redis image, following the upstream redis image's documented contract:
# a first argument that is an option (-...) or a config file (*.conf) runs redis-server with it; started as
# root, redis-server gets /data handed to the redis user and runs as redis (gosu); started with --user,
# it runs as that user unchanged.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find . \! -user redis -exec chown redis:redis '{}' +
	exec gosu redis "$0" "$@"
fi

# Files Redis writes (RDB, AOF) are for the redis user only, unless the caller chose a umask.
if [ "$(umask)" = 0022 ]; then
	umask 0077
fi

exec "$@"
