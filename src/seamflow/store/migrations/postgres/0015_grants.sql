-- Seamflow schema 14: grants per flow or folder of flows, tokens limited to flows, OIDC sign-in requests.
-- A grant gives a subject (a user, every member of a department, every holder of a position) a
-- permission role on one flow (`flow:<id>`) or on every flow under a folder of the project's flows
-- folder (`folder:<path>/`); global roles stay on `users.roles`. A personal API token may be limited
-- to some of those targets (`user_tokens.targets`, comma-separated; empty: not limited).
-- An OIDC sign-in in progress is kept by its `state` until it is used once or expires, with its
-- nonce and PKCE verifier, so any process of a serve group can finish it.

CREATE TABLE grants (
    subject         TEXT NOT NULL,
    role            TEXT NOT NULL,
    target          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    PRIMARY KEY (subject, role, target)
);
CREATE INDEX grants_target ON grants (target);

ALTER TABLE user_tokens ADD COLUMN targets TEXT NOT NULL DEFAULT '';

CREATE TABLE sign_in_requests (
    state           TEXT PRIMARY KEY,
    nonce           TEXT NOT NULL,
    verifier        TEXT NOT NULL,
    until_ms        BIGINT NOT NULL
);
