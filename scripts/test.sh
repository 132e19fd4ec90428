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
cargo test --workspace --locked
