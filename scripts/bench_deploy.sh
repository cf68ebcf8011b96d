#!/usr/bin/env bash
# Benchmark the deploy; prints figures, asserts nothing.
#   cold:  no PRISM images at all (base image debootstrapped, every image built), no containers
#   warm:  images present, no containers or volumes (the usual fresh deploy on a prepared host)
#   no-op: everything deployed, a second run (must report changed=0)
# Runs against inventories/molecule (its own names and ports); do not run it while Molecule runs.
# Usage: scripts/bench_deploy.sh [--skip-cold]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_CONFIG=$PWD/ansible.cfg MOLECULE_PROJECT_DIRECTORY=$PWD
inv=inventories/molecule

play() { ansible-playbook -i "$inv" "$@" >/tmp/prism-bench.log 2>&1 || { tail -30 /tmp/prism-bench.log; exit 1; }; }
timed() {
    local label=$1; shift
    local t0; t0=$(date +%s%N)
    play "$@"
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '%-8s %4d.%01d s   %s\n' "$label" $((ms / 1000)) $((ms % 1000 / 100)) "$(grep -Eo 'changed=[0-9]+' /tmp/prism-bench.log | tail -1)"
}

echo "PRISM deploy benchmark on $(nproc) cores, $(date -u +%FT%TZ)"
if [ "${1:-}" != "--skip-cold" ]; then
    play molecule/resources/destroy.yml
    docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^prism/' | xargs -r docker rmi -f >/dev/null
    docker builder prune -af >/dev/null 2>&1 || true
    timed cold site.yml
fi
play molecule/resources/destroy.yml
timed warm site.yml
timed no-op site.yml
timed check site.yml --check --diff
play molecule/resources/destroy.yml
