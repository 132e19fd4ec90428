#!/usr/bin/env bash
# Runs the append benchmark on SQLite and on a throwaway PostgreSQL cluster
# (started on a free loopback port, removed on exit). Release build.
#   IAM_BENCH_RUNS (default 5) and IAM_BENCH_SECONDS (default 2) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/postgres.sh
start_throwaway_postgres
cargo bench -p iam-eventstore --bench append -- "$@"
