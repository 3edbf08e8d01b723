-- The console's run searches with 1,000,000 runs stored (benchmarks/console_pages.py), without a
-- scan of runs or events on PostgreSQL.
-- runs_created: a time window's runs, newest first (`GET /api/v1/runs?since=&until=`, ordered by
-- created_ms, id): read backwards from the window's end, stopping at the page's end. Ordered by id
-- alone, PostgreSQL walked the primary key from the newest run down to the window (0.46 s for a
-- day in the middle of 30 days).
-- events_dedupe_key: the search by business key across flows (`?key=` without `flow`): the
-- events_dedupe index starts with flow_id, which SQLite skip-scans but PostgreSQL cannot
-- (a parallel scan of every event, 0.18 s).
CREATE INDEX runs_created ON runs (created_ms, id);
CREATE INDEX events_dedupe_key ON events (dedupe_key);
