#!/usr/bin/env bash
# Runs every check and test of the workspace, against SQLite and PostgreSQL.
# Works on a fresh machine: installs PostgreSQL from Debian's packages when it
# is absent (as root), starts a throwaway cluster on a free loopback port, and
# removes it on exit; installs the audit tests' tools (Python packages from
# PyPI into target/test-venv, Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/postgres.sh
source scripts/lib/test_tools.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

start_throwaway_postgres
ensure_test_tools

echo "==> cargo test (SQLite and PostgreSQL)"
log=$(mktemp -t iam-test.XXXXXX)
cargo test --workspace --locked 2>&1 | tee "$log"

# One closing line for the whole run: cargo prints a summary per test binary,
# and the last one (doc-tests) often counts nothing.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
rm -f "$log"
