-- Seamflow schema 12: the audit trail. One row per administrative or human action (who, when,
-- what, on which object, from where), hash-chained: `hash` is SHA-256 over the entry's canonical
-- content and `prev_hash`, the hash of the entry before it. Entries are appended under a lock
-- (an advisory transaction lock on PostgreSQL, the writer lock on SQLite), so the processes of a
-- cluster keep one chain; `seq` has no gaps, so a deleted row shows. Pruning deletes the oldest
-- entries and appends an anchor entry (`audit.pruned`) that holds the hash at the cut.

CREATE TABLE audit_log (
    seq             BIGINT PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    via             TEXT NOT NULL,
    action          TEXT NOT NULL,
    object          TEXT NOT NULL,
    client          TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);

CREATE INDEX audit_log_at ON audit_log (at_ms);
