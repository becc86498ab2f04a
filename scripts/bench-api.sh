#!/usr/bin/env bash
# The REST API's throughput and latency under load. Not part of the test suite.
#
# Builds `ballast` in release mode, starts `ballast serve` on a fresh SQLite file with an
# admin token and BENCH_POLICIES policies (the specification's example, renamed) created
# through the API, then runs wrk against three reads, each with the token:
#
#   GET /api/v1/scaling/policies/{id}   one policy
#   GET /api/v1/scaling/policies        every policy
#   GET /api/v1/scaling/history         the newest 50 history entries
#
# and prints wrk's report (requests/s, latency percentiles) for each, then a summary.
# No Prometheus is configured: the engine keeps ticking in the background (every policy's
# metric query fails and is held on; the schedule floor scales each up once), as it would
# beside a real API load. wrk comes from Debian's package, installed when missing.
#
# Usage: scripts/bench-api.sh
# Environment: BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_DURATION (20s),
#              BENCH_POLICIES (100).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${BENCH_THREADS:-2}
connections=${BENCH_CONNECTIONS:-32}
duration=${BENCH_DURATION:-20s}
policies=${BENCH_POLICIES:-100}

# shellcheck source=scripts/services.sh
source scripts/services.sh
if ! command -v wrk >/dev/null 2>&1; then
  _services_log "installing wrk (Debian package)"
  _services_apt_install wrk
fi

cargo build --release --quiet -p ballast --bin ballast
bin="${CARGO_TARGET_DIR:-target}/release/ballast"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Only the settings below, none inherited from the caller's environment.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BALLAST_' || true)
export BALLAST_DATABASE_URL="sqlite://$work/ballast.db"
export BALLAST_DATA_DIR="$work/data"
export BALLAST_LISTEN="127.0.0.1:0"
export BALLAST_LOG_FORMAT=json

token=$("$bin" token create --name bench --scope admin 2>/dev/null)

"$bin" serve 2>"$work/serve.log" &
server_pid=$!
url=""
for _ in $(seq 1 300); do
  listen=$(grep -o '"message":"ballast serving"[^}]*"listen":"[^"]*"' "$work/serve.log" \
    | grep -o '"listen":"[^"]*"' | cut -d'"' -f4 || true)
  if [[ -n "$listen" ]]; then
    url="http://$listen"
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/serve.log" >&2
    echo "bench-api: the server exited" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$url" ]]; then
  cat "$work/serve.log" >&2
  echo "bench-api: the server did not start" >&2
  exit 1
fi

auth="Authorization: Bearer $token"
first_id=""
for i in $(seq 1 "$policies"); do
  body=$(cat <<EOF
{"name":"cdc-worker-$i","target_type":"cdc-worker","target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,"cooldown_seconds":300,"scale_to_zero":false,"scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],"scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],"schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}
EOF
)
  created=$(curl -sS --fail-with-body -X POST -H "$auth" -H 'Content-Type: application/json' \
    --data "$body" "$url/api/v1/scaling/policies")
  if [[ -z "$first_id" ]]; then
    first_id=$(grep -o '"id":"[^"]*"' <<<"$created" | head -n 1 | cut -d'"' -f4)
  fi
done
echo "bench-api: $policies policies on SQLite at $url (release build)" >&2

targets=(
  "/api/v1/scaling/policies/$first_id"
  "/api/v1/scaling/policies"
  "/api/v1/scaling/history"
)
summary=()
for path in "${targets[@]}"; do
  curl -sS --fail-with-body -o /dev/null -H "$auth" "$url$path"
  echo
  echo "== GET $path (wrk -t$threads -c$connections -d$duration --latency)"
  report=$(wrk -t"$threads" -c"$connections" -d"$duration" --latency -H "$auth" "$url$path")
  echo "$report"
  if grep -q 'Non-2xx or 3xx responses' <<<"$report"; then
    echo "bench-api: GET $path answered errors under load" >&2
    exit 1
  fi
  label="GET ${path/$first_id/\{id\}}"
  summary+=("$(awk -v path="$label" '
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
    END { printf "%-44s %10s %9s %9s %9s", path, rps, p50, p90, p99 }' <<<"$report")")
done

echo
printf '%-44s %10s %9s %9s %9s\n' "endpoint" "req/s" "p50" "p90" "p99"
printf '%s\n' "${summary[@]}"
