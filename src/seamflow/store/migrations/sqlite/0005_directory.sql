-- Seamflow schema 5: the directory — who takes part in processes and who may use the API.
-- Departments form a tree with a head; users belong to a department, hold positions (what approval
-- routing asks for: finance director, buyer) and report to a manager. References between them are
-- checked by the directory capability, not by foreign keys: an import may name a department's head
-- before that user's row exists. Sign-in failures and lockouts live on the user's row, so a lockout
-- holds across restarts and processes. Personal API tokens and console sessions are stored as
-- SHA-256 digests of their secret, never the secret itself.

CREATE TABLE departments (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    parent_id       TEXT,
    head_login      TEXT,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX departments_parent ON departments (parent_id);

CREATE TABLE positions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    updated_ms      INTEGER NOT NULL
);

CREATE TABLE users (
    login            TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    email            TEXT,
    mobile           TEXT,
    department_id    TEXT,
    manager_login    TEXT,
    is_active        INTEGER NOT NULL DEFAULT 1,
    roles            TEXT NOT NULL DEFAULT '[]',
    password_hash    TEXT,
    failed_sign_ins  INTEGER NOT NULL DEFAULT 0,
    first_failure_ms INTEGER,
    locked_until_ms  INTEGER,
    updated_ms       INTEGER NOT NULL
);
CREATE INDEX users_department ON users (department_id);
CREATE INDEX users_manager ON users (manager_login);

CREATE TABLE user_positions (
    login           TEXT NOT NULL,
    position_id     TEXT NOT NULL,
    PRIMARY KEY (login, position_id)
);
CREATE INDEX user_positions_position ON user_positions (position_id);

CREATE TABLE user_tokens (
    id              TEXT PRIMARY KEY,
    login           TEXT NOT NULL,
    name            TEXT NOT NULL,
    hash            TEXT NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER,
    last_used_ms    INTEGER,
    revoked_ms      INTEGER
);
CREATE INDEX user_tokens_login ON user_tokens (login);

CREATE TABLE sessions (
    hash            TEXT PRIMARY KEY,
    login           TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    revoked_ms      INTEGER
);
CREATE INDEX sessions_login ON sessions (login);
