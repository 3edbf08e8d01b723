-- Seamflow schema 11 (PostgreSQL): data migrations (`seamflow migrate`). One row per migration with its
-- checkpoint (source rows settled, counts, counts per broken rule) and the process running it
-- (a lease renewed per batch); the quarantine keeps every row that broke a rule with what it
-- broke, until it is fixed and re-submitted (status `loaded`).

CREATE TABLE data_migrations (
    migration_id    TEXT PRIMARY KEY,
    position        BIGINT NOT NULL DEFAULT 0,
    loaded          BIGINT NOT NULL DEFAULT 0,
    fixed           BIGINT NOT NULL DEFAULT 0,
    quarantined     BIGINT NOT NULL DEFAULT 0,
    by_rule         TEXT NOT NULL DEFAULT '{}',
    owner           TEXT,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    started_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    finished_ms     BIGINT
);

CREATE TABLE quarantine (
    migration_id    TEXT NOT NULL,
    row_number      BIGINT NOT NULL,
    row_key         TEXT,
    row_data        TEXT NOT NULL,
    violations      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (migration_id, row_number)
);
