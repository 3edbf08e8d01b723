-- Seamflow schema 14: the flow lifecycle — every deployment of a flow version (when, by whom, how:
-- start, watch, api, rollback), so `seamflow flow versions` lists them and a rollback finds the
-- previous one; and the results of shadow runs (a candidate version rehearsed on the live runs'
-- events, its effects compared with theirs), one row per event, the report as JSON text.

CREATE TABLE flow_deployments (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id      TEXT NOT NULL,
    version      TEXT NOT NULL,
    deployed_ms  INTEGER NOT NULL,
    deployed_by  TEXT NOT NULL,
    how          TEXT NOT NULL
);
CREATE INDEX flow_deployments_flow ON flow_deployments (flow_id, seq);

CREATE TABLE shadow_results (
    shadow_id          TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    flow_id            TEXT NOT NULL,
    live_version       TEXT NOT NULL,
    candidate_version  TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    report             TEXT NOT NULL,
    PRIMARY KEY (shadow_id, seq)
);
CREATE INDEX shadow_results_flow ON shadow_results (flow_id, created_ms);

-- Live shadows: while one is active (not stopped, under its cap of events and before its end), each
-- finished live run of the flow started after it is rehearsed with the candidate (its results are
-- shadow_results rows of the same shadow_id). The candidate's source is in flow_versions.
CREATE TABLE live_shadows (
    shadow_id          TEXT PRIMARY KEY,
    flow_id            TEXT NOT NULL,
    candidate_version  TEXT NOT NULL,
    started_ms         INTEGER NOT NULL,
    until_ms           INTEGER NOT NULL,
    max_events         INTEGER NOT NULL,
    started_by         TEXT NOT NULL,
    stopped_ms         INTEGER,
    stopped_by         TEXT
);
CREATE INDEX live_shadows_flow ON live_shadows (flow_id, started_ms);
