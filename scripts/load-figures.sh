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

# The distributed mode: tenancy, vault, executor, one worker process and the
# edge as separate processes on PostgreSQL and Redis, driven through the edge;
# CPU is counted over all five.
distributed() {
  local workflow=$1 executions=$2
  shift 2
  printf '\n### %s on separate processes (PostgreSQL + Redis)\n' "$workflow"
  local database="tyboo_load_$(date +%s%N)" dir
  dir="$(mktemp -d)"
  psql "$postgres/postgres" -qc "CREATE DATABASE $database"
  local tyboo="$CARGO_TARGET_DIR/release/tyboo" pids=()
  (
    export TYBOO_DATA_DIR="$dir" TYBOO_DATABASE_URL="$postgres/$database" TYBOO_QUEUE_URL="$redis"
    export TYBOO_EXECUTOR__BROKER__KEY_PREFIX="tyboo-load-$database" TYBOO_LOG__FILTER=warn
    export TYBOO_TENANCY__SERVICE_SECRET="$database-secret" TYBOO_VAULT__MASTER_KEY_FILE="$dir/master.key"
    export TYBOO_LISTEN__TENANCY=127.0.0.1:58051 TYBOO_LISTEN__VAULT=127.0.0.1:58052
    export TYBOO_LISTEN__EXECUTOR=127.0.0.1:58053 TYBOO_LISTEN__EDGE=127.0.0.1:58080
    export TYBOO_LISTEN__METERING=127.0.0.1:58055
    export TYBOO_ENDPOINTS__TENANCY=http://127.0.0.1:58051 TYBOO_ENDPOINTS__VAULT=http://127.0.0.1:58052
    export TYBOO_ENDPOINTS__EXECUTOR=http://127.0.0.1:58053 TYBOO_ENDPOINTS__METERING=http://127.0.0.1:58055
    "$tyboo" migrate >/dev/null
    trap 'kill "${pids[@]}" 2>/dev/null' EXIT
    # Each process prints its addresses, ending with its metrics line, once
    # it serves; tenancy then prints the bootstrap block.
    start() {
      TYBOO_LISTEN__ADMIN="127.0.0.1:$1" "$tyboo" "${@:2}" >"$dir/$1.out" 2>&1 &
      pids+=($!)
      until grep -q '^ *metrics' "$dir/$1.out"; do sleep 0.2; done
    }
    start 59091 serve tenancy
    until grep -q "API key" "$dir/59091.out"; do sleep 0.2; done
    start 59092 serve vault
    start 59096 serve metering
    start 59093 serve executor
    start 59094 worker --pool default
    start 59095 serve edge
    until curl -sf http://127.0.0.1:58080/healthz >/dev/null; do sleep 0.2; done
    key="$(awk '$1 == "API" && $2 == "key" { print $3 }' "$dir/59091.out")"
    "$load" --edge http://127.0.0.1:58080 --api-key "$key" --pids "$(IFS=,; echo "${pids[*]}")" \
      --workflow "$workflow" --executions "$executions" --half-peak "$@"
  )
  psql "$postgres/postgres" -qc "DROP DATABASE $database WITH (FORCE)"
  redis-cli -u "$redis" --scan --pattern "tyboo-load-$database*" | xargs -r redis-cli -u "$redis" DEL >/dev/null
  rm -rf "$dir"
}

for backend in sqlite postgres; do
  run "$backend" noop 1000
  run "$backend" webhook3 1000
  run "$backend" chain40 100
done
distributed noop 1000
distributed webhook3 1000
distributed chain40 100
