#!/usr/bin/env bash
# schemathesis against a running `tyboo up`: every operation of
# /openapi.json, with its positive-data, negative-data, status-code and
# response-schema checks. Exits non-zero on any failure or 5xx.
#
# Usage: scripts/schemathesis.sh TYBOO_BINARY ST_BINARY
# The run's settings (which checks, how many examples, and the few
# documented exceptions) are in tests/schemathesis/schemathesis.toml.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tyboo="$1"
st="$2"

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Free loopback ports for every listener of this run.
read -r edge tenancy vault executor template metering admin < <(python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(7)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
PY
)

# One key drives every request: its rate limits would only measure themselves.
TYBOO_LISTEN__EDGE="127.0.0.1:$edge" \
TYBOO_LISTEN__TENANCY="127.0.0.1:$tenancy" \
TYBOO_LISTEN__VAULT="127.0.0.1:$vault" \
TYBOO_LISTEN__EXECUTOR="127.0.0.1:$executor" \
TYBOO_LISTEN__TEMPLATE="127.0.0.1:$template" \
TYBOO_LISTEN__METERING="127.0.0.1:$metering" \
TYBOO_LISTEN__ADMIN="127.0.0.1:$admin" \
TYBOO_LOG__FILTER=warn \
TYBOO_LIMITS__DEFAULTS__API_KEY_REQUESTS_PER_MINUTE=6000000 \
TYBOO_LIMITS__DEFAULTS__API_KEY_BURST=1000000 \
TYBOO_LIMITS__DEFAULTS__WORKSPACE_REQUESTS_PER_MINUTE=6000000 \
TYBOO_LIMITS__DEFAULTS__WORKSPACE_BURST=1000000 \
  "$tyboo" up --data-dir "$work/data" > "$work/stdout" 2> "$work/stderr" &
pid=$!

key=""
for _ in $(seq 1 600); do
  key="$(grep -o 'tyb_[A-Za-z0-9_-]*' "$work/stdout" | head -n 1 || true)"
  [ -n "$key" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "tyboo up exited before printing its API key:" >&2
    cat "$work/stdout" "$work/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$key" ]; then
  echo "tyboo up printed no API key within 60 s" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi

# From the scratch folder: schemathesis keeps its example database in the
# working directory.
cd "$work"
status=0
"$st" --config-file "$root/tests/schemathesis/schemathesis.toml" run "http://127.0.0.1:$edge/openapi.json" \
  --header "Authorization: Bearer $key" \
  --report junit --report-dir "$work/report" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "tyboo up is no longer running after the run" >&2
  cat "$work/stderr" >&2
  status=1
fi
exit "$status"
