-- Seamflow schema 1: events, runs, journal, timers, waits, signals, schedules, blobs, event log.
-- Instants are integer milliseconds since the epoch (UTC).

CREATE TABLE flow_versions (
    flow_id     TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL,
    path        TEXT,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (flow_id, version)
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    flow_id     TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    dedupe_key  TEXT,
    body        BLOB,
    body_ref    TEXT,
    received_ms INTEGER NOT NULL
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
    output        BLOB,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    finished_ms   INTEGER
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
    input       BLOB,
    output      BLOB,
    error       TEXT,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, path, attempt)
);

CREATE TABLE timers (
    run_id  TEXT NOT NULL,
    path    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    due_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, path, kind)
);
CREATE INDEX timers_due ON timers (due_ms);

CREATE TABLE waits (
    run_id      TEXT NOT NULL,
    path        TEXT NOT NULL,
    signal      TEXT NOT NULL,
    key         TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX waits_signal ON waits (signal, key);

CREATE TABLE pending_signals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    signal      TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     BLOB,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX pending_signals_key ON pending_signals (signal, key);

CREATE TABLE schedules (
    flow_id     TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    next_ms     INTEGER NOT NULL
);

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    data        BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE event_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
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
    created_ms  INTEGER NOT NULL
);
