-- Seamflow schema 3: record sync. The canonical record of each synced object, the key crosswalk
-- (which record of which system it is, and the content hash last seen and last written there),
-- tombstones (deleted records are kept as `deleted` so a compare does not re-create them), and
-- the conflict queue.

CREATE TABLE sync_records (
    sync_id       TEXT NOT NULL,
    canonical_id  TEXT NOT NULL,
    match_key     TEXT,
    data          TEXT NOT NULL,
    meta          TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL DEFAULT 0,
    updated_ms    INTEGER NOT NULL,
    PRIMARY KEY (sync_id, canonical_id)
);
CREATE INDEX sync_records_match ON sync_records (sync_id, match_key);

CREATE TABLE sync_links (
    sync_id        TEXT NOT NULL,
    side           TEXT NOT NULL,
    side_key       TEXT NOT NULL,
    canonical_id   TEXT NOT NULL,
    seen_hash      TEXT,
    written_hash   TEXT,
    written_at     TEXT,
    updated_ms     INTEGER NOT NULL,
    PRIMARY KEY (sync_id, side, side_key)
);
CREATE INDEX sync_links_canonical ON sync_links (sync_id, canonical_id);

CREATE TABLE sync_conflicts (
    id            TEXT PRIMARY KEY,
    sync_id       TEXT NOT NULL,
    canonical_id  TEXT NOT NULL,
    field         TEXT NOT NULL,
    candidates    TEXT NOT NULL,
    status        TEXT NOT NULL,
    resolution    TEXT,
    created_ms    INTEGER NOT NULL,
    resolved_ms   INTEGER
);
CREATE INDEX sync_conflicts_open ON sync_conflicts (sync_id, status);
