-- Seamflow schema 4: progress of initial bulk loads (`seamflow sync load`), one row per sync and
-- side. Until now a load borrowed a row of `feeds` and the lease mechanism of `workers`; a load is
-- neither a trigger's feed nor a worker, so it gets its own table: where the next chunk starts,
-- how many records went through, which process runs it (with a lease it renews per chunk) and
-- when it finished.

CREATE TABLE sync_loads (
    sync_id         TEXT NOT NULL,
    side            TEXT NOT NULL,
    position        TEXT,
    done            INTEGER NOT NULL DEFAULT 0,
    owner           TEXT,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    started_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,
    PRIMARY KEY (sync_id, side)
);
