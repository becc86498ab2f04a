#!/usr/bin/env bash
# Runs every check and test of the workspace, as CI does. Installs and starts what the
# tests need first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== services"
scripts/services.sh

echo "== format"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo test --workspace --locked

echo "== API fuzzing (schemathesis against the OpenAPI document; store invariants after it)"
scripts/fuzz-api.sh
