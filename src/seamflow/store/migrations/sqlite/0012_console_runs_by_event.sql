-- Seamflow schema 12: find a run by its event, for the console's and the API's search by business
-- key (`GET /api/v1/runs?key=`: the events with that dedupe key, then their runs) without a scan of runs.
CREATE INDEX runs_event ON runs (event_id);
