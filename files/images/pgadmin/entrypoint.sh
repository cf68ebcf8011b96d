#!/usr/bin/env bash
# Entrypoint of the built pgAdmin image: the subset of upstream's pkg/docker/entrypoint.sh that PRISM uses.
# First start (no /var/lib/pgadmin/pgadmin4.db): check PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD
# (or PGADMIN_DEFAULT_PASSWORD_FILE), create the database and that user, then import
# PGADMIN_SERVER_JSON_FILE (default /pgadmin4/servers.json) for the user with `setup.py load-servers`.
# Every start: gunicorn, one worker with threads (pgAdmin's sessions need one process), on
# PGADMIN_LISTEN_ADDRESS:PGADMIN_LISTEN_PORT ([::]:80). PGADMIN_CONFIG_<NAME> (a Python literal)
# sets config.<NAME> (config_distro.py). Not implemented: TLS, postfix.
set -Eeo pipefail

# usage: file_env VAR -- reads VAR or VAR_FILE (like upstream), never both
file_env() {
	local var="$1" fileVar="${1}_FILE"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"; exit 1
	fi
	if [ "${!fileVar:-}" ]; then export "$var"="$(< "${!fileVar}")"; fi
	unset "$fileVar"
}

cd /pgadmin4
if [ ! -f /var/lib/pgadmin/pgadmin4.db ]; then
	file_env PGADMIN_DEFAULT_PASSWORD
	if [ -z "${PGADMIN_DEFAULT_EMAIL:-}" ] || [ -z "${PGADMIN_DEFAULT_PASSWORD:-}" ]; then
		echo >&2 'You need to define the PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD or PGADMIN_DEFAULT_PASSWORD_FILE environment variables.'
		exit 1
	fi
	if ! grep -Eq '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$' <<<"$PGADMIN_DEFAULT_EMAIL"; then
		echo >&2 "'${PGADMIN_DEFAULT_EMAIL}' does not appear to be a valid email address."
		exit 1
	fi
	export PGADMIN_SETUP_EMAIL="$PGADMIN_DEFAULT_EMAIL" PGADMIN_SETUP_PASSWORD="$PGADMIN_DEFAULT_PASSWORD"
	# Importing the app creates the configuration database and the first user.
	python3 run_pgadmin.py
	unset PGADMIN_SETUP_PASSWORD PGADMIN_DEFAULT_PASSWORD
	PGADMIN_SERVER_JSON_FILE="${PGADMIN_SERVER_JSON_FILE:-/pgadmin4/servers.json}"
	if [ -f "$PGADMIN_SERVER_JSON_FILE" ]; then
		python3 setup.py load-servers "$PGADMIN_SERVER_JSON_FILE" --user "$PGADMIN_DEFAULT_EMAIL"
	fi
fi
unset PGADMIN_DEFAULT_PASSWORD PGADMIN_SETUP_PASSWORD

TIMEOUT=$(python3 -c 'import config; print(int(config.SESSION_EXPIRATION_TIME * 60 * 60 * 24))')
exec gunicorn --timeout "$TIMEOUT" --bind "${PGADMIN_LISTEN_ADDRESS:-[::]}:${PGADMIN_LISTEN_PORT:-80}" \
	-w 1 --threads "${GUNICORN_THREADS:-25}" --access-logfile "${GUNICORN_ACCESS_LOGFILE:--}" run_pgadmin:app
