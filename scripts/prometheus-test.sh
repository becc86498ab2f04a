#!/usr/bin/env bash
# Runs ballast-sources' tests against a real Prometheus, installing it first when missing
# (scripts/services.sh). Each test starts its own Prometheus on a free loopback port.
# Extra arguments go to `cargo test`, e.g. `scripts/prometheus-test.sh -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/services.sh
source scripts/services.sh
services_all

cargo test -p ballast-sources --all-features "$@"
