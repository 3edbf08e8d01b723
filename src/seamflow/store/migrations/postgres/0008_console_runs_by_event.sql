-- Seamflow schema 12: the console's run searches without a scan of runs.
-- runs_event: a run by its event, for the search by business key (`GET /api/v1/runs?key=`: the
-- events with that dedupe key, then their runs).
-- runs_flow_status: a flow's runs in one status, newest first (`?flow=&status=`), which with
-- only runs_flow_created read every run of the flow (0.56 s with 1M runs, benchmarks/console_pages.py).
CREATE INDEX runs_event ON runs (event_id);
CREATE INDEX runs_flow_status ON runs (flow_id, status, id);
