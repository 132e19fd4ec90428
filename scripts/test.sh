#!/usr/bin/env bash
# Runs every check and test of the workspace, against SQLite and PostgreSQL.
# Works on a fresh machine: installs PostgreSQL from Debian's packages when it
# is absent (as root), starts a throwaway cluster on a free loopback port, and
# removes it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/postgres.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

start_throwaway_postgres

echo "==> cargo test (SQLite and PostgreSQL)"
log=$(mktemp -t iam-test.XXXXXX)
cargo test --workspace --locked 2>&1 | tee "$log"

# One closing line for the whole run: cargo prints a summary per test binary,
# and the last one (doc-tests) often counts nothing.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
rm -f "$log"
