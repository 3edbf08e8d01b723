-- Seamflow schema 1 (PostgreSQL): events, runs, journal, timers, waits, signals, schedules, blobs, event log.
-- Instants are integer milliseconds since the epoch (UTC).

CREATE TABLE flow_versions (
    flow_id     TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL,
    path        TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (flow_id, version)
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    flow_id     TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    dedupe_key  TEXT,
    body        BYTEA,
    body_ref    TEXT,
    received_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_dedupe ON events (flow_id, dedupe_key);

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    flow_id       TEXT NOT NULL,
    flow_version  TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    status        TEXT NOT NULL,
    generation    INTEGER NOT NULL DEFAULT 0,
    parent_run_id TEXT,
    parent_path   TEXT,
    error         TEXT,
    output        BYTEA,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    finished_ms BIGINT
);
CREATE INDEX runs_flow_created ON runs (flow_id, created_ms);
CREATE INDEX runs_status ON runs (status, created_ms);

CREATE TABLE journal (
    run_id      TEXT NOT NULL,
    path        TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    input       BYTEA,
    output      BYTEA,
    error       TEXT,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, path, attempt)
);

CREATE TABLE timers (
    run_id  TEXT NOT NULL,
    path    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    due_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, path, kind)
);
CREATE INDEX timers_due ON timers (due_ms);

CREATE TABLE waits (
    run_id      TEXT NOT NULL,
    path        TEXT NOT NULL,
    signal      TEXT NOT NULL,
    key         TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX waits_signal ON waits (signal, key);

CREATE TABLE pending_signals (
    id          BIGSERIAL PRIMARY KEY,
    signal      TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     BYTEA,
    created_ms BIGINT NOT NULL
);
CREATE INDEX pending_signals_key ON pending_signals (signal, key);

CREATE TABLE schedules (
    flow_id     TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    next_ms BIGINT NOT NULL
);

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    data        BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE event_log (
    seq         BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    flow_id     TEXT,
    run_id      TEXT,
    path        TEXT,
    activity    TEXT,
    objects     TEXT,
    attributes  TEXT
);
CREATE INDEX event_log_run ON event_log (run_id);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
