#!/usr/bin/env bash
# Runs the HTTP benchmark (tests/iam-bench) against a release iamd on a fresh
# SQLite file or, with --postgres, on a fresh database of a throwaway
# PostgreSQL cluster (removed on exit). Other arguments go to iam-bench:
#   ./scripts/bench-http.sh --postgres --runs 5 --json bench.json
#   ./scripts/bench-http.sh --quick
#   ./scripts/bench-http.sh --postgres import --large   (bulk provisioning)
set -euo pipefail
cd "$(dirname "$0")/.."
postgres=false
args=()
for arg in "$@"; do
    if [ "$arg" = --postgres ]; then postgres=true; else args+=("$arg"); fi
done
cargo build --release -p iamd -p iamctl -p iam-bench
if $postgres; then
    source scripts/lib/postgres.sh
    start_throwaway_postgres
    "$PG_THROWAWAY_BIN/psql" "$IAM_TEST_POSTGRES_URL" -q -c 'CREATE DATABASE iam_bench'
    args+=(--database-url "${IAM_TEST_POSTGRES_URL%/*}/iam_bench")
fi
# Not exec: the shell's exit trap stops the PostgreSQL cluster.
cargo run --release -q -p iam-bench -- "${args[@]}"
