-- Seamflow schema 6 (5 is the directory's): tokens that connections obtained by signing in
-- (a token endpoint such as DingTalk's gettoken, or OAuth2), one row per connection, shared by
-- every process of the cluster. The token is ciphertext sealed by the engine with the project's
-- secret key; `version` grows with each renewal, so a process that saw a token revoked can tell
-- whether another one renewed it. `problem` says why the connection cannot sign in (its OAuth2
-- refresh token was refused) until it is authorized again: the status `needs_authorization`.

CREATE TABLE connection_tokens (
    connection      TEXT PRIMARY KEY,
    sealed          TEXT NOT NULL,
    expires_ms      INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    problem         TEXT,
    updated_ms      INTEGER NOT NULL
);
