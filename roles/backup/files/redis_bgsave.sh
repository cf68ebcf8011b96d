# Redis BGSAVE, run by sh -eu inside the Redis container (docker exec) as the admin ACL user
# (REDISCLI_AUTH in the exec environment). Waits until the save has finished and succeeded, then prints
# "PRISM_RESULT <json>" with the server version and the keys per database.
#   $1: seconds to wait for the save
cli() { redis-cli --no-auth-warning --user "$REDIS_USER" -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
info() { cli INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }

saves_before="$(info rdb_saves)"
answer="$(cli BGSAVE SCHEDULE)"
case "$answer" in
  "Background saving started"|"Background saving scheduled") ;;
  *) echo "BGSAVE answered: $answer" >&2; exit 1 ;;
esac
# rdb_saves counts finished saves; it moves when ours (or a scheduled one started after our call) is done.
deadline=$(( $(date +%s) + $1 ))
while [ "$(info rdb_saves)" = "$saves_before" ] || [ "$(info rdb_bgsave_in_progress)" != 0 ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "BGSAVE did not finish within $1 s (backup_redis_bgsave_timeout)" >&2
    exit 1
  fi
  sleep 0.2
done
status="$(info rdb_last_bgsave_status)"
[ "$status" = ok ] || { echo "BGSAVE failed: rdb_last_bgsave_status=$status (see the Redis log)" >&2; exit 1; }

keys="$(cli INFO keyspace | tr -d '\r' | sed -n 's/^\(db[0-9]*\):keys=\([0-9]*\),.*/"\1": \2/p' | paste -sd, -)"
printf 'PRISM_RESULT {"tool_version": "%s", "keys": {%s}}\n' "$(redis-server --version)" "$keys"
