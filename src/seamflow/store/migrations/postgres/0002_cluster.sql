-- Seamflow schema 2 (PostgreSQL): several processes share one database.
-- Runs get a lease (owner, lease_until_ms) and a fencing epoch that every journal write checks;
-- workers register and heartbeat; cluster-wide concurrency slots; durable feed cursors.

ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_claimable ON runs (lease_until_ms, created_ms) WHERE status IN ('queued', 'running');
CREATE INDEX runs_owner ON runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX runs_finished ON runs (finished_ms) WHERE finished_ms IS NOT NULL;
CREATE INDEX events_received ON events (received_ms);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    roles         TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    stopped_ms BIGINT
);

CREATE TABLE slots (
    scope           TEXT NOT NULL,
    slot            INTEGER NOT NULL,
    owner           TEXT,
    holder          TEXT,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, slot)
);

CREATE TABLE feeds (
    flow_id         TEXT PRIMARY KEY,
    spec            TEXT NOT NULL,
    cursor          BYTEA,
    owner           TEXT,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    last_poll_ms BIGINT,
    last_ok_ms BIGINT,
    last_item_ms BIGINT,
    failing_since_ms BIGINT,
    last_error      TEXT,
    items           BIGINT NOT NULL DEFAULT 0
);
