#!/usr/bin/env bash
# Benchmark backup and restore of a 1,000,000-row orch_* table; prints figures, asserts nothing.
# In one run, on one throwaway PostgreSQL container of the built image (own inventory: prefix prism_bench,
# port 35432, /opt/prism-bench; removed at the end):
#   raw pg_dump -Fc / pg_restore --clean --single-transaction of the database, run inside the container
#   playbooks/backup.yml / restore.yml with backup_parts=[postgres] (throwaway tool container, manifest
#   with sha256, retention, metric; restore verifies checksums first)
# Usage: scripts/bench_backup.sh [rows]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_CONFIG=$PWD/ansible.cfg
inv=$(mktemp -d /tmp/prism-bench-inv.XXXXXX)
mkdir -p "$inv/group_vars/all"
cat >"$inv/hosts.yml" <<'YAML'
docker_hosts:
  hosts:
    localhost: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
YAML
cat >"$inv/group_vars/all/prism.yml" <<YAML
prism_environment: bench
prism_secrets_dir: $inv/.secrets
prism_image_build_fallback: true
prism_name_prefix: prism_bench
prism_network: orch_network_bench
prism_base_dir: /opt/prism-bench
postgres_port: 35432
backup_parts: [postgres]
YAML
log=/tmp/prism-bench-backup.log
play() { ansible-playbook -i "$inv" "$@" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }; }
cleanup() { ansible-playbook -i "$inv" molecule/resources/destroy.yml >/dev/null 2>&1 || true; rm -rf "$inv"; }
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
fmt() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
pg() { docker exec -e PGPASSWORD="$(cat "$inv/.secrets/postgres_superuser_password")" prism_bench_postgres "$@"; }

echo "PRISM backup benchmark: $rows rows in orch_user_query, $(nproc) cores, $(date -u +%FT%TZ)"
play scripts/bench_backup.yml
# The fixed cost of our playbooks (Ansible, tool containers, counting, manifest, retention): an empty schema.
t=$(date +%s%N); play playbooks/backup.yml; empty_dump=$(ms "$t")
t=$(date +%s%N); play playbooks/restore.yml -e backup_restore_confirm=true; empty_restore=$(ms "$t")
pg psql -q -h 127.0.0.1 -U postgres -d prism -c "INSERT INTO orch_user_query (user_id, query_text, parsed_intent)
  SELECT 'user' || (g % 1000), 'why is line ' || g || ' slow?', jsonb_build_object('intent', 'diagnose', 'n', g)
  FROM generate_series(1, $rows) g;"
pg psql -q -h 127.0.0.1 -U postgres -d prism -c "VACUUM ANALYZE orch_user_query"
size=$(pg psql -At -h 127.0.0.1 -U postgres -d prism -c "SELECT pg_size_pretty(pg_database_size('prism'))")
echo "database size: $size"

t=$(date +%s%N); pg pg_dump -h 127.0.0.1 -U postgres -Fc -f /tmp/raw.dump prism; raw_dump=$(ms "$t")
t=$(date +%s%N); pg pg_restore -h 127.0.0.1 -U postgres --clean --if-exists --single-transaction -d prism /tmp/raw.dump
raw_restore=$(ms "$t")
raw_size=$(pg stat -c %s /tmp/raw.dump)

t=$(date +%s%N); play playbooks/backup.yml; our_dump=$(ms "$t")
t=$(date +%s%N); play playbooks/restore.yml -e backup_restore_confirm=true; our_restore=$(ms "$t")
our_size=$(stat -c %s "$(ls -d /opt/prism-bench/backups/2* | tail -1)/postgres/prism.dump")
count=$(pg psql -At -h 127.0.0.1 -U postgres -d prism -c "SELECT count(*) FROM orch_user_query")

printf '%-34s %10s %10s  %s\n' "" backup restore "dump size"
printf '%-34s %10s %10s  %s bytes\n' "raw pg_dump -Fc / pg_restore" "$(fmt "$raw_dump")" "$(fmt "$raw_restore")" "$raw_size"
printf '%-34s %10s %10s  %s bytes\n' "backup.yml / restore.yml" "$(fmt "$our_dump")" "$(fmt "$our_restore")" "$our_size"
printf '%-34s %10s %10s\n' "the same, empty schema (overhead)" "$(fmt "$empty_dump")" "$(fmt "$empty_restore")"
echo "rows after our restore: $count; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
