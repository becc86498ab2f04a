-- Ballast's store, PostgreSQL flavour. Keep in step with ../sqlite/0001_initial.sql: the
-- queries are shared, only the column types differ.
--
-- Names are compared with the "C" collation so that policies list in the same (bytewise)
-- order as on SQLite, whatever the database's locale.

CREATE TABLE policies (
    id UUID PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    spec JSONB NOT NULL,
    version BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    dry_run BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Copies of the spec's rules and schedules, rewritten with every change of the policy, so
-- that they can be queried with SQL. The spec column stays the source of truth.
CREATE TABLE policy_rules (
    policy_id UUID NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('scale_up', 'scale_down')),
    position BIGINT NOT NULL,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    duration TEXT,
    scale_by BIGINT NOT NULL,
    PRIMARY KEY (policy_id, direction, position)
);

CREATE TABLE policy_schedules (
    policy_id UUID NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    cron_expression TEXT NOT NULL,
    desired_replicas BIGINT NOT NULL,
    timezone TEXT,
    PRIMARY KEY (policy_id, position)
);

CREATE TABLE policy_state (
    policy_id UUID PRIMARY KEY REFERENCES policies (id) ON DELETE CASCADE,
    state JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The audit log. No foreign key on policy_id: history outlives the policy it is about.
CREATE TABLE history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'policy_created', 'policy_updated',
        'policy_deleted', 'token_created', 'token_deleted')),
    policy_id UUID,
    policy_name TEXT,
    actor TEXT NOT NULL,
    action TEXT,
    from_replicas BIGINT,
    to_replicas BIGINT,
    dry_run BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    decision JSONB,
    outcome TEXT CHECK (outcome IN ('pending', 'succeeded', 'failed', 'dry_run')),
    outcome_detail TEXT,
    outcome_at TIMESTAMPTZ
);

CREATE INDEX history_policy_id ON history (policy_id, id);
CREATE INDEX history_at ON history (at);

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('viewer', 'operator', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL
);
