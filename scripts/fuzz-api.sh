#!/usr/bin/env bash
# Fuzzes the REST API against its own OpenAPI document with schemathesis, then checks that
# nothing was left half-written.
#
# Starts `ballast serve` on a free loopback port with a fresh SQLite store and a Prometheus
# URL at a closed loopback port (so every metric query fails and a dry run must answer with
# a decision that holds, never a 500), seeds two policies, runs schemathesis with a bounded
# number of examples per operation, and then checks the store: every policy reads back,
# validates and can be sent back as it is; its rule and schedule copies match its spec; its
# history accounts for every version; nothing refers to a policy that neither exists nor was
# recorded as deleted. Exits non-zero on any failure, after printing what failed.
#
# Environment: FUZZ_EXAMPLES (examples per operation and phase, default 60), FUZZ_SEED
# (default fixed, so that CI is repeatable; set another to explore), FUZZ_KEEP=1 keeps the
# work folder (store, server log, schemathesis report).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=target/fuzz-venv
EXAMPLES=${FUZZ_EXAMPLES:-60}
SEED=${FUZZ_SEED:-20260131}

# The venv is reused while it holds the pinned version.
installed=$("$VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [[ "$installed" != "$SCHEMATHESIS_VERSION" ]]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi
PY="$PWD/$VENV/bin/python"
ST="$PWD/$VENV/bin/st"

cargo build -p ballast --locked --quiet
BALLAST="$PWD/target/debug/ballast"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${FUZZ_KEEP:-}" == 1 ]]; then
        echo "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT

fail() {
    echo "FUZZ FAILED: $*" >&2
    if [[ -s "$WORK/server.log" ]]; then
        echo "--- last lines of the server log" >&2
        tail -n 40 "$WORK/server.log" >&2
    fi
    exit 1
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
CLOSED_PORT=$(free_port)
while [[ "$CLOSED_PORT" == "$PORT" ]]; do CLOSED_PORT=$(free_port); done
BASE="http://127.0.0.1:$PORT"
DB="$WORK/ballast.db"

# Only the variables set here: `serve` rejects `BALLAST_*` names it does not know (the
# client's BALLAST_SERVER and BALLAST_TOKEN among them).
while read -r name; do unset "$name"; done < <(env | sed -n 's/^\(BALLAST_[A-Z_]*\)=.*/\1/p')
export BALLAST_LISTEN="127.0.0.1:$PORT"
export BALLAST_DATABASE_URL="sqlite://$DB"
export BALLAST_PROMETHEUS_URL="http://127.0.0.1:$CLOSED_PORT"
export BALLAST_QUERY_TIMEOUT=2s
export BALLAST_INTERVAL=1h

TOKEN=$("$BALLAST" token create --name fuzz-admin --scope admin 2>/dev/null)
[[ "$TOKEN" == blst_* ]] || fail "ballast token create printed no token"

"$BALLAST" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    if "$PY" -c "import urllib.request as u; u.urlopen('$BASE/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || fail "ballast serve exited early"
    sleep 0.1
done
"$PY" -c "import urllib.request as u; u.urlopen('$BASE/healthz', timeout=1)" 2>/dev/null ||
    fail "ballast serve never became healthy"

# The helper for the seed and the invariants: plain urllib and sqlite3, no other package.
cat >"$WORK/check.py" <<'PYTHON'
"""Seeds the store before the fuzzing and checks its invariants after it."""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

BASE, TOKEN, DB, BALLAST = sys.argv[2:6]
SERVER_FIELDS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
problems = []


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(BASE + path, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, dict(e.headers), json.loads(raw)
        except ValueError:
            return e.code, dict(e.headers), raw.decode(errors="replace")


def problem(message):
    problems.append(message)
    print(f"  invariant broken: {message}", file=sys.stderr)


def seed():
    with open("examples/policies/cdc-worker.json") as f:
        spec = json.load(f)
    # Names of their own: the document's example (which schemathesis sends) takes the
    # example file's name.
    spec["name"] = "fuzz-seed"
    status, _, created = call("POST", "/api/v1/scaling/policies", spec)
    if status != 201:
        sys.exit(f"seeding a policy failed: {status} {created}")
    # A second one without the schedule, whose floor would otherwise decide the dry run.
    spec["name"] += "-rules-only"
    del spec["schedules"]
    status, _, created = call("POST", "/api/v1/scaling/policies", spec)
    if status != 201:
        sys.exit(f"seeding a policy failed: {status} {created}")
    # Prometheus is a closed port: the dry run must hold on the metric error, not fail.
    status, _, evaluation = call("POST", f"/api/v1/scaling/policies/{created['id']}/evaluate")
    if status != 200:
        sys.exit(f"evaluate with Prometheus down answered {status}: {evaluation}")
    decision = evaluation["decision"]
    if decision["action"] != "hold" or decision["desired"] != decision["current"]:
        sys.exit(f"evaluate with Prometheus down did not hold: {decision}")
    if not any("philotes_cdc_lag_seconds" in p for p in decision["data_problems"]):
        sys.exit(f"evaluate with Prometheus down names no metric problem: {decision}")
    print("seeded two policies; a dry run holds on the metric error")


def check_api():
    status, _, listing = call("GET", "/api/v1/scaling/policies")
    if status != 200:
        return problem(f"GET /api/v1/scaling/policies answered {status}: {listing}")
    for listed in listing["policies"]:
        pid = listed["id"]
        status, headers, read = call("GET", f"/api/v1/scaling/policies/{pid}")
        if status != 200:
            problem(f"policy {pid} is listed but GET answers {status}: {read}")
            continue
        if read != listed:
            problem(f"policy {pid} reads back differently from its listing")
        if headers.get("ETag") != f'"{read["version"]}"':
            problem(f"policy {pid}: ETag {headers.get('ETag')} is not its version")
        spec = {k: v for k, v in read.items() if k not in SERVER_FIELDS}
        # Validates on its own, as a policy file.
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", dir=os.path.dirname(DB), delete=False
        ) as f:
            json.dump(spec, f)
        validated = subprocess.run([BALLAST, "validate", f.name], capture_output=True, text=True)
        if validated.returncode != 0:
            problem(f"policy {pid} does not validate: {validated.stdout.strip()}")
        # And is accepted back as it was read, bumping the version by one.
        status, _, updated = call(
            "PUT", f"/api/v1/scaling/policies/{pid}", read, {"If-Match": f'"{read["version"]}"'}
        )
        if status != 200 or updated.get("version") != read["version"] + 1:
            problem(f"policy {pid} read back is not accepted back: {status} {updated}")
    print(f"{len(listing['policies'])} policies read back, validate and are accepted back")


def check_store():
    db = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    policies = {row["id"]: row for row in db.execute("SELECT * FROM policies")}
    for pid, row in policies.items():
        try:
            spec = json.loads(row["spec"])
        except ValueError as e:
            problem(f"policy {pid}: its spec is not JSON ({e})")
            continue
        if spec.get("name") != row["name"]:
            problem(f"policy {pid}: name column {row['name']!r} is not the spec's")
        for column in ("enabled", "dry_run"):
            if bool(row[column]) != bool(spec.get(column, column == "enabled")):
                problem(f"policy {pid}: {column} column differs from the spec")
        for direction in ("scale_up", "scale_down"):
            want = [
                (r["metric"], r["operator"], float(r["threshold"]), r["scale_by"])
                for r in spec.get(f"{direction}_rules", [])
            ]
            have = [
                (r["metric"], r["operator"], r["threshold"], r["scale_by"])
                for r in db.execute(
                    "SELECT * FROM policy_rules WHERE policy_id = ? AND direction = ? "
                    "ORDER BY position",
                    (pid, direction),
                )
            ]
            if want != have:
                problem(f"policy {pid}: {direction} rule copies {have} differ from spec {want}")
        want = [(s["cron_expression"], s["desired_replicas"]) for s in spec.get("schedules", [])]
        have = [
            (s["cron_expression"], s["desired_replicas"])
            for s in db.execute(
                "SELECT * FROM policy_schedules WHERE policy_id = ? ORDER BY position", (pid,)
            )
        ]
        if want != have:
            problem(f"policy {pid}: schedule copies {have} differ from spec {want}")
        kinds = [
            r[0] for r in db.execute("SELECT kind FROM history WHERE policy_id = ?", (pid,))
        ]
        if kinds.count("policy_created") != 1:
            problem(f"policy {pid}: {kinds.count('policy_created')} creation entries")
        if kinds.count("policy_updated") != row["version"] - 1:
            problem(
                f"policy {pid}: version {row['version']} but "
                f"{kinds.count('policy_updated')} update entries"
            )
        if "policy_deleted" in kinds:
            problem(f"policy {pid} exists but history says it was deleted")
    for table in ("policy_rules", "policy_schedules", "policy_state"):
        for (pid,) in db.execute(f"SELECT DISTINCT policy_id FROM {table}"):
            if pid not in policies:
                problem(f"{table} has rows of policy {pid}, which does not exist")
    gone = db.execute(
        "SELECT DISTINCT policy_id FROM history WHERE policy_id IS NOT NULL"
    ).fetchall()
    for (pid,) in gone:
        if pid in policies:
            continue
        kinds = [
            r[0] for r in db.execute("SELECT kind FROM history WHERE policy_id = ?", (pid,))
        ]
        if kinds.count("policy_created") != 1 or kinds.count("policy_deleted") != 1:
            problem(f"history refers to policy {pid}, neither stored nor recorded as deleted")
    for entry in db.execute("SELECT * FROM history WHERE kind = 'decision'"):
        if entry["policy_id"] is None or entry["decision"] is None:
            problem(f"decision entry {entry['id']} lacks its policy or its decision")
        elif (entry["outcome"] == "dry_run") != bool(entry["dry_run"]):
            problem(f"decision entry {entry['id']}: outcome {entry['outcome']} vs dry run")
    tokens = db.execute("SELECT COUNT(*) FROM api_tokens").fetchone()[0]
    created, deleted = (
        db.execute("SELECT COUNT(*) FROM history WHERE kind = ?", (k,)).fetchone()[0]
        for k in ("token_created", "token_deleted")
    )
    if tokens != created - deleted:
        problem(f"{tokens} tokens, but history has {created} created and {deleted} deleted")
    (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
    if integrity != "ok":
        problem(f"SQLite integrity check: {integrity}")
    if db.execute("PRAGMA foreign_key_check").fetchall():
        problem("SQLite foreign key check found dangling rows")
    counts = dict(db.execute("SELECT kind, COUNT(*) FROM history GROUP BY kind").fetchall())
    print(
        f"{len(policies)} policies in the store; their copies and history are consistent "
        f"(history: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})"
    )


if sys.argv[1] == "seed":
    seed()
else:
    check_api()
    check_store()
    sys.exit(1 if problems else 0)
PYTHON

"$PY" "$WORK/check.py" seed "$BASE" "$TOKEN" "$DB" "$BALLAST" || fail "seeding"

# /readyz answers 503 while Prometheus is down: that is its documented answer here, not a
# crash. Some operations cannot be checked for acceptance of schema-valid bodies: for a
# policy the document gives its shape, and the validator checks much more (cron
# expressions, durations, bounds in order, ...), answering 422; a pushed sample's timestamp
# must lie within the retention window, which no schema can say.
# Every check schemathesis has runs (its default; a check named on the command line would
# override the per-operation settings below).
cat >"$WORK/schemathesis.toml" <<'TOML'
[checks]
negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "428"]

[[operations]]
include-path = "/readyz"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "503"]

[[operations]]
include-name = [
    "POST /api/v1/scaling/policies",
    "PUT /api/v1/scaling/policies/{id}",
    "POST /api/v1/metrics",
]
checks.positive_data_acceptance.enabled = false
TOML

echo "schemathesis $SCHEMATHESIS_VERSION: $EXAMPLES examples per operation, seed $SEED"
set +e
# From the work folder, where schemathesis and hypothesis leave their databases.
(cd "$WORK" && "$ST" --config-file schemathesis.toml --no-color run \
    "$BASE/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --request-timeout 30 \
    --output-sanitize true \
    >schemathesis.txt 2>&1)
st_status=$?
set -e
if [[ $st_status -ne 0 ]]; then
    cat "$WORK/schemathesis.txt"
    fail "schemathesis found failures (exit $st_status)"
fi
sed -n '/= SUMMARY =/,$p' "$WORK/schemathesis.txt"

kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died during the fuzzing"
if grep -E "internal error|panicked" "$WORK/server.log"; then
    fail "the server logged internal errors or panics"
fi
"$PY" "$WORK/check.py" check "$BASE" "$TOKEN" "$DB" "$BALLAST" || fail "the store's invariants"
echo "no server error, no schema mismatch, nothing half-written"
passed=$(grep -oE '[0-9]+ passed' "$WORK/schemathesis.txt" | tail -n 1 | cut -d' ' -f1)
echo "fuzz: ${passed:-0} passed, 0 failed"
