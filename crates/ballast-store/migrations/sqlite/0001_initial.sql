-- Ballast's store, SQLite flavour. Keep in step with ../postgres/0001_initial.sql: the
-- queries are shared, only the column types differ.
--
-- STRICT tables, so a value of the wrong type is an error instead of being stored as is.
-- Ids are hyphenated lower-case UUID text. Timestamps are UTC text with a fixed precision
-- (`2026-01-31T08:00:00.000000Z`), so text order is time order and range filters work.
-- JSON columns hold serde_json text.

CREATE TABLE policies (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    version INTEGER NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;

-- Copies of the spec's rules and schedules, rewritten with every change of the policy, so
-- that they can be queried with SQL. The spec column stays the source of truth.
CREATE TABLE policy_rules (
    policy_id TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('scale_up', 'scale_down')),
    position INTEGER NOT NULL,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold REAL NOT NULL,
    duration TEXT,
    scale_by INTEGER NOT NULL,
    PRIMARY KEY (policy_id, direction, position)
) STRICT;

CREATE TABLE policy_schedules (
    policy_id TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    cron_expression TEXT NOT NULL,
    desired_replicas INTEGER NOT NULL,
    timezone TEXT,
    PRIMARY KEY (policy_id, position)
) STRICT;

CREATE TABLE policy_state (
    policy_id TEXT PRIMARY KEY NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- The audit log. No foreign key on policy_id: history outlives the policy it is about.
-- AUTOINCREMENT so that an id is never reused, which cursors rely on.
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'policy_created', 'policy_updated',
        'policy_deleted', 'token_created', 'token_deleted')),
    policy_id TEXT,
    policy_name TEXT,
    actor TEXT NOT NULL,
    action TEXT,
    from_replicas INTEGER,
    to_replicas INTEGER,
    dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    reason TEXT NOT NULL,
    decision TEXT,
    outcome TEXT CHECK (outcome IN ('pending', 'succeeded', 'failed', 'dry_run')),
    outcome_detail TEXT,
    outcome_at TEXT
) STRICT;

CREATE INDEX history_policy_id ON history (policy_id, id);
CREATE INDEX history_at ON history (at);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('viewer', 'operator', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
) STRICT;
