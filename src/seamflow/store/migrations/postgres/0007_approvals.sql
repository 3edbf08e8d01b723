-- Seamflow schema 7 (PostgreSQL): approvals and their tasks — people deciding inside a run.
-- An approval belongs to a run parked at an `approval` step; the run waits for the signal
-- ('approval', approvals.id), so it holds no worker while people decide. `plan` holds the levels
-- with their assignees resolved from the directory when the step began (JSON); `level` is the
-- open one. A task is one person's work at one level: pending until decided, or closed when its
-- level (or the approval) was settled without them. Decisions lock the approval's row first, so
-- two approvers of an any-of level deciding at once give exactly one outcome.

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    path            TEXT NOT NULL,
    flow_id         TEXT NOT NULL,
    requester       TEXT NOT NULL,
    subject         TEXT,
    data            TEXT,
    plan            TEXT NOT NULL,
    level           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    UNIQUE (run_id, path)
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    approval_id     TEXT NOT NULL,
    level           INTEGER NOT NULL,
    assignee        TEXT NOT NULL,
    status          TEXT NOT NULL,
    decision        TEXT,
    comment         TEXT,
    form            TEXT,
    created_ms      BIGINT NOT NULL,
    due_ms          BIGINT,
    decided_ms      BIGINT
);
CREATE INDEX tasks_assignee ON tasks (assignee, status, created_ms);
CREATE INDEX tasks_approval ON tasks (approval_id, level);
