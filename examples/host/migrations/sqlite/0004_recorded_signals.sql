-- The console's recorded signals: samples an author saves in the decision explorer and
-- replays in a playbook version's shadow comparison. Per tenant, at most 200 (the host
-- refuses more).
CREATE TABLE recorded_signals (
    tenant      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    signal      TEXT    NOT NULL,
    recorded_by TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX recorded_signals_newest ON recorded_signals (tenant, recorded_at);
