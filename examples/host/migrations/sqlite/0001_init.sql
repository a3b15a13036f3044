-- mmm-host schema, SQLite. Times are Unix milliseconds (INTEGER); JSON is TEXT.
-- Keep in step with migrations/postgres/0001_init.sql: the store's SQL is shared.

CREATE TABLE playbook_versions (
    tenant       TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'published', 'deprecated')),
    yaml         TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    published_at INTEGER,
    PRIMARY KEY (tenant, id, version)
);
CREATE INDEX playbook_versions_published ON playbook_versions (status);

-- One row: increases whenever the playbook set (playbooks, experiments) changes.
CREATE TABLE set_revision (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    revision INTEGER NOT NULL
);
INSERT INTO set_revision (one, revision) VALUES (1, 0);

CREATE TABLE experiments (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    yaml       TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE preferences (
    tenant     TEXT    NOT NULL,
    actor_id   TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, actor_id)
);

CREATE TABLE tenant_policies (
    tenant     TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE delivery_targets (
    tenant  TEXT NOT NULL,
    surface TEXT NOT NULL,
    url     TEXT NOT NULL,
    secret  TEXT NOT NULL,
    PRIMARY KEY (tenant, surface)
);

CREATE TABLE issued_actions (
    tenant           TEXT    NOT NULL,
    action_id        TEXT    NOT NULL,
    actor_id         TEXT    NOT NULL,
    playbook_id      TEXT    NOT NULL,
    playbook_version INTEGER NOT NULL,
    action_type      TEXT    NOT NULL,
    experiment_id    TEXT,
    variant          TEXT,
    decided_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant, action_id)
);

CREATE TABLE approvals (
    tenant      TEXT    NOT NULL,
    approval_id TEXT    NOT NULL,
    action_id   TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (approval_id)
);
CREATE UNIQUE INDEX approvals_action ON approvals (tenant, action_id);

CREATE TABLE outcomes (
    tenant      TEXT    NOT NULL,
    action_id   TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    playbook_id TEXT    NOT NULL,
    action_type TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (tenant, action_id, result)
);

-- Per-tenant aggregates in hour buckets; labels never name an actor.
CREATE TABLE tenant_counts (
    tenant TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    metric TEXT    NOT NULL,
    l1     TEXT    NOT NULL DEFAULT '',
    l2     TEXT    NOT NULL DEFAULT '',
    l3     TEXT    NOT NULL DEFAULT '',
    n      INTEGER NOT NULL,
    PRIMARY KEY (tenant, metric, bucket, l1, l2, l3)
);

CREATE TABLE receipts (
    chain_id     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    receipt_id   TEXT    NOT NULL UNIQUE,
    tenant       TEXT    NOT NULL,
    envelope     TEXT    NOT NULL,
    stored_at    INTEGER NOT NULL,
    forwarded_at INTEGER,
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX receipts_unforwarded ON receipts (stored_at) WHERE forwarded_at IS NULL;
CREATE INDEX receipts_tenant ON receipts (tenant, chain_id, seq);

CREATE TABLE receipt_chains (
    chain_id   TEXT    PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    tenant  TEXT    NOT NULL,
    sub     TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    before  TEXT    NOT NULL,
    after   TEXT    NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, at);

CREATE TABLE decided_signals (
    tenant     TEXT    NOT NULL,
    signal_id  TEXT    NOT NULL,
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, signal_id)
);
CREATE INDEX decided_signals_at ON decided_signals (decided_at);

-- Fatigue history: one row per firing of a playbook for an actor.
CREATE TABLE fatigue_events (
    tenant      TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    playbook_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    actions     INTEGER NOT NULL
);
CREATE INDEX fatigue_events_actor ON fatigue_events (tenant, actor_id, at);
