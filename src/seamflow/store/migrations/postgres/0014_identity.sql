-- Seamflow schema 14 (PostgreSQL): identity resolution (`seamflow identity`). Per entity type: the next free
-- unified ID number and the golden-record rules; every source record with its normalised values
-- and unified ID (origin_id: the ID it had before a steward's merge, given back by a split); the
-- blocking keys a real-time match looks up; each cluster's golden record; the steward's merges
-- and splits, which every later run honours.

CREATE TABLE identity_entities (
    entity          TEXT PRIMARY KEY,
    next_number     BIGINT NOT NULL,
    settings        TEXT NOT NULL,
    resolved_ms     BIGINT NOT NULL
);

CREATE TABLE identity_records (
    entity          TEXT NOT NULL,
    source          TEXT NOT NULL,
    source_key      TEXT NOT NULL,
    unified_id      TEXT NOT NULL,
    origin_id       TEXT,
    trust           BIGINT NOT NULL,
    data            TEXT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (entity, source, source_key)
);

CREATE INDEX identity_records_unified ON identity_records (entity, unified_id);

CREATE TABLE identity_keys (
    entity          TEXT NOT NULL,
    block_key       TEXT NOT NULL,
    source          TEXT NOT NULL,
    source_key      TEXT NOT NULL
);

CREATE INDEX identity_keys_lookup ON identity_keys (entity, block_key);
CREATE INDEX identity_keys_record ON identity_keys (entity, source, source_key);

CREATE TABLE identity_clusters (
    entity          TEXT NOT NULL,
    unified_id      TEXT NOT NULL,
    golden          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (entity, unified_id)
);

CREATE TABLE identity_decisions (
    id              TEXT PRIMARY KEY,
    entity          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    left_refs       TEXT NOT NULL,
    right_refs      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);

CREATE INDEX identity_decisions_entity ON identity_decisions (entity, created_ms);
