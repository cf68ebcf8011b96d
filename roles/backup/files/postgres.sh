# PostgreSQL part, run by sh -eu in a throwaway container of the server's own image (same pg_dump version
# as the server), on the stack network; the superuser password is a read-only file mount.
#   backup:  pg_dumpall --globals-only (roles, no passwords) and pg_dump -Fc of every database into /backup
#   probe:   rows per table of every database (the restore's "holds data" check)
#   restore: the globals, then pg_restore --clean --single-transaction of every dump in /backup
# The last line of stdout is "PRISM_RESULT <json>".
mode="$1"
PGPASSWORD="$(cat /run/secrets/postgres_superuser_password)"
export PGPASSWORD

count_rows() {
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT coalesce(json_object_agg(t.name, t.n ORDER BY t.name), '{}')
FROM (
  SELECT format('%I.%I', n.nspname, c.relname) AS name,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                                              false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%'
) t
SQL
}

databases() {
  psql -X -At -v ON_ERROR_STOP=1 -d postgres \
    -c "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
}

version="$(pg_dump --version)"
counts=""
case "$mode" in
  backup)
    cd /backup
    pg_dumpall --globals-only --no-role-passwords --file=globals.sql
    for db in $(databases); do
      pg_dump --format=custom --file="$db.dump" "$db"
      counts="$counts${counts:+,}\"$db\":$(count_rows "$db")"
    done
    ;;
  probe)
    for db in $(databases); do
      counts="$counts${counts:+,}\"$db\":$(count_rows "$db")"
    done
    ;;
  restore)
    # Roles that exist already make CREATE ROLE fail; everything else in the globals must apply.
    psql -X -q -d postgres -v ON_ERROR_STOP=0 -f /backup/globals.sql 2>/tmp/globals.err || true
    if grep 'ERROR' /tmp/globals.err | grep -v 'already exists' >&2; then
      echo "restoring the globals (roles) failed, see the errors above" >&2
      exit 1
    fi
    for dump in /backup/*.dump; do
      db="$(basename "$dump" .dump)"
      exists="$(echo "SELECT 1 FROM pg_database WHERE datname = :'db'" | psql -X -At -d postgres -v db="$db")"
      if [ -z "$exists" ]; then
        createdb "$db"
      fi
      pg_restore --clean --if-exists --single-transaction --exit-on-error --dbname="$db" "$dump"
      counts="$counts${counts:+,}\"$db\":$(count_rows "$db")"
    done
    ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
printf 'PRISM_RESULT {"tool_version": "%s", "counted": {%s}}\n' "$version" "$counts"
