-- Seamflow schema 8 (PostgreSQL): delegation while someone is away, and return-for-changes.
-- A delegation sends a user's new tasks to their delegate from starts_ms until ends_ms (one per
-- user: setting it again replaces it); the task records on whose behalf it was given
-- (tasks.on_behalf_of). A return asks the requester to amend and resubmit: that task is of kind
-- 'amend' (the others 'decide'); tasks.round counts resubmissions, so a level opened again after
-- a return counts only the approvals of its new round.

ALTER TABLE tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'decide';
ALTER TABLE tasks ADD COLUMN on_behalf_of TEXT;
ALTER TABLE tasks ADD COLUMN round INTEGER NOT NULL DEFAULT 0;

CREATE TABLE delegations (
    login           TEXT PRIMARY KEY,
    delegate        TEXT NOT NULL,
    starts_ms       BIGINT NOT NULL,
    ends_ms         BIGINT NOT NULL,
    set_by          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);

-- Notifications of an approval (a task created, a reminder, an escalation, a return, the
-- outcome), written in the same commit as what they tell of, and sent afterwards through the
-- step's connection: a failed send is retried at next_ms and never holds up a decision.
CREATE TABLE approval_notices (
    id              TEXT PRIMARY KEY,
    approval_id     TEXT NOT NULL,
    task_id         TEXT,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    connection      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_ms         BIGINT NOT NULL,
    error           TEXT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX approval_notices_due ON approval_notices (status, next_ms);
