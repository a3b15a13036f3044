-- Webhook deliveries (docs/host.md "Delivery"): one row per (action, surface), queued in
-- the transaction that stores the decision's receipt, sent by the delivery worker.
-- Keep in step with migrations/postgres/0002_delivery_queue.sql: the store's SQL is shared.
--
-- state: 'pending' (due at next_attempt_at, or being sent by the claim claim_token until
-- then), 'done' (a 2xx), 'dead' (given up after the last attempt, or no target any more).
-- The target (url, secret) is read when sending, by (tenant, surface): the secret is
-- never copied here. traceparent: the deciding span's W3C trace context (traces on), the
-- parent of the delivery's span.

CREATE TABLE delivery_queue (
    id              TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    surface         TEXT    NOT NULL,
    action_id       TEXT    NOT NULL,
    decision_id     TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    claim_token     TEXT,
    last_error      TEXT,
    traceparent     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX delivery_queue_action ON delivery_queue (action_id, surface);
CREATE INDEX delivery_queue_due ON delivery_queue (next_attempt_at) WHERE state = 'pending';
CREATE INDEX delivery_queue_tenant ON delivery_queue (tenant, created_at);
