#!/usr/bin/env bash
# The load figures of the README: the three workflows on SQLite and on
# PostgreSQL + Redis, each flat out and then at half of that peak, with the
# redis-benchmark XADD and pgbench single-row-insert baselines measured in
# the same run. Release build; each PostgreSQL run gets a database of its
# own and each run a Redis key prefix of its own.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tyboo/target}"
postgres="${TYBOO_LOAD_POSTGRES:-postgres://root@127.0.0.1:5432}"
redis="${TYBOO_LOAD_REDIS:-redis://127.0.0.1:6379}"

cargo build --release --locked -p tyboo -p tyboo-load
load="$CARGO_TARGET_DIR/release/tyboo-load"

run() {
  local backend=$1 workflow=$2 executions=$3
  shift 3
  printf '\n### %s on %s\n' "$workflow" "$backend"
  if [ "$backend" = sqlite ]; then
    "$load" --workflow "$workflow" --executions "$executions" --half-peak --baselines "$@"
  else
    local database="tyboo_load_$(date +%s%N)"
    psql "$postgres/postgres" -qc "CREATE DATABASE $database"
    "$load" --workflow "$workflow" --executions "$executions" --half-peak --baselines \
      --database-url "$postgres/$database" --queue-url "$redis" "$@"
    psql "$postgres/postgres" -qc "DROP DATABASE $database WITH (FORCE)"
  fi
}

for backend in sqlite postgres; do
  run "$backend" noop 1000
  run "$backend" webhook3 1000
  run "$backend" chain40 100
done
