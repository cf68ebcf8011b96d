#!/usr/bin/env bash
# Deploy benchmark with its floor, measured in the same run (scripts/bench_deploy.py says what it prints).
# Removes the inventory's containers and volumes for the warm phases: a dev host only.
#   scripts/bench_deploy.sh [-i inventories/dev] [--prefix prism] [-n 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
exec python scripts/bench_deploy.py "$@"
