-- Seamflow schema 15: feedback on a flow, a step or a run (a suggestion or a problem report) left by
-- any signed-in user; a process owner closes it with a note. Each one and its closing is also a row
-- of the event log (feedback.created, feedback.closed), written in the same commit.

CREATE TABLE feedback (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    flow_id         TEXT NOT NULL,
    run_id          TEXT,
    step            TEXT,
    body            TEXT NOT NULL,
    author          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    closed_ms       BIGINT,
    closed_by       TEXT,
    close_note      TEXT
);
CREATE INDEX feedback_open ON feedback (closed_ms, created_ms);
CREATE INDEX feedback_flow ON feedback (flow_id, created_ms);
