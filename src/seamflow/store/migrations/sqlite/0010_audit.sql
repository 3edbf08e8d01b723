-- Seamflow schema 12: the audit trail, and the signatures webhooks were accepted with. One row per administrative or human action (who, when,
-- what, on which object, from where), hash-chained: `hash` is SHA-256 over the entry's canonical
-- content and `prev_hash`, the hash of the entry before it. Entries are appended under a lock
-- (an advisory transaction lock on PostgreSQL, the writer lock on SQLite), so the processes of a
-- cluster keep one chain; `seq` has no gaps, so a deleted row shows. Pruning deletes the oldest
-- entries and appends an anchor entry (`audit.pruned`) that holds the hash at the cut.

CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY,
    at_ms           INTEGER NOT NULL,
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

-- Signatures of webhooks signed with a timestamp, kept until the timestamp's tolerance has
-- passed: the same signature twice is a replay and is refused (across every process).
CREATE TABLE webhook_signatures (
    flow_id         TEXT NOT NULL,
    digest          TEXT NOT NULL,
    expires_ms      INTEGER NOT NULL,
    PRIMARY KEY (flow_id, digest)
);

CREATE INDEX webhook_signatures_expiry ON webhook_signatures (expires_ms);
