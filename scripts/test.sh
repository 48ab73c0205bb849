#!/usr/bin/env bash
# The whole test suite: formatting, lints, contract lint and breaking-change
# check, and every test on the embedded backends (SQLite) and on
# PostgreSQL + Redis; then the workflow
# end-to-end suite (and what each port lists through reflection) once more
# with every service and two worker pools as separate `tyboo` processes on
# PostgreSQL + Redis (TYBOO_TEST_TOPOLOGY); then schemathesis against a
# running `tyboo up`.
#
# Works from a fresh clone: it installs the tools it needs (buf from npm,
# schemathesis from PyPI, Python's grpcio for the reflection-only client) into a cache outside the
# clone, and starts PostgreSQL and Redis if they are not answering.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Build output and tools live outside the clone so repeated runs reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tyboo/target}"
tools="${TYBOO_TOOLS_DIR:-/var/tmp/tyboo/tools}"
export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1
mkdir -p "$CARGO_TARGET_DIR" "$tools"

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL and Redis"
bash "$root/scripts/services.sh"

step "tools: buf, schemathesis, grpcio, jq"
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq; }
buf_version=1.75.0
if [ ! -x "$tools/node_modules/.bin/buf" ] || \
   [ "$("$tools/node_modules/.bin/buf" --version 2>/dev/null)" != "$buf_version" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" "@bufbuild/buf@$buf_version"
fi
schemathesis_version=4.32.5
st="$tools/schemathesis-$schemathesis_version/bin/st"
if [ ! -x "$st" ]; then
  python3 -m venv "$tools/schemathesis-$schemathesis_version"
  "$tools/schemathesis-$schemathesis_version/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version"
fi
if ! python3 -c 'import grpc, grpc_reflection, google.protobuf' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check \
    'grpcio>=1.60' 'grpcio-reflection>=1.60' 'protobuf>=4.25'
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "buf lint"
"$tools/node_modules/.bin/buf" lint

# The contracts as they stand, compared with the commit before HEAD (rules
# FILE, from buf.yaml). A shallow clone or a tree outside git has no such
# commit to compare with; `.git#ref=` also reads a worktree's `.git` file.
step "buf breaking against HEAD~1"
if [ -e "$root/.git" ] && git -C "$root" rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null 2>&1; then
  "$tools/node_modules/.bin/buf" breaking --against '.git#ref=HEAD~1'
else
  echo "skipped: no commit HEAD~1 to compare with (a shallow clone, or no git history)"
fi

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

results="$CARGO_TARGET_DIR/test-results.log"
: > "$results"

step "tests on SQLite and in-process backends"
TYBOO_TEST_BACKEND=sqlite cargo test --workspace --locked 2>&1 | tee -a "$results"

export TYBOO_TEST_POSTGRES_URL="${TYBOO_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/postgres}"
export TYBOO_TEST_REDIS_URL="${TYBOO_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

step "tests on PostgreSQL and Redis"
TYBOO_TEST_BACKEND=postgres \
  cargo test --workspace --locked 2>&1 | tee -a "$results"

step "workflow, reflection and edge limit tests on separate processes (tenancy, vault, executor, workers, edges)"
TYBOO_TEST_BACKEND=postgres TYBOO_TEST_TOPOLOGY=processes \
  cargo test -p tyboo --test e2e --locked -- workflows:: reflection:: edge_limits:: 2>&1 | tee -a "$results"

step "schemathesis against tyboo up: every operation of /openapi.json"
cargo build -p tyboo --bin tyboo --locked
bash "$root/scripts/schemathesis.sh" "$CARGO_TARGET_DIR/debug/tyboo" "$st"

# One closing line for every pass together.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "\nall backends: %d passed, %d failed\n", passed, failed }' "$results"
