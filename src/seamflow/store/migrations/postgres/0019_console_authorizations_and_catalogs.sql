-- Seamflow schema 19: OAuth2 authorizations of connections started in the console, until the
-- provider sends the browser back (any serve process may take the callback). A row is taken once
-- (deleted as it is read) and is good for about ten minutes.

CREATE TABLE connection_authorizations (
    state           TEXT PRIMARY KEY,
    connection      TEXT NOT NULL,
    verifier        TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    started_by      TEXT NOT NULL,
    started_via     TEXT NOT NULL,
    until_ms        BIGINT NOT NULL
);

-- The flows each process serves, as a digest of (flow id, version) pairs, reported after each
-- reload: a save in the console answers once every live process of its serve group serves it.
ALTER TABLE workers ADD COLUMN catalog TEXT;
