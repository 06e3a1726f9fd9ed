-- Per-user API keys: only a SHA-256 digest of the secret is stored, plus a
-- short public prefix to find the row.
CREATE TABLE api_keys (
    id           TEXT   PRIMARY KEY NOT NULL,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    prefix       TEXT   NOT NULL UNIQUE,
    secret_hash  BLOB   NOT NULL,
    epoch        BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- One row per issued login token (id = the token's jti), so logout and
-- revocation take effect server-side at once.
CREATE TABLE user_sessions (
    id           TEXT   PRIMARY KEY NOT NULL,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    epoch        BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    client_addr  TEXT,
    user_agent   TEXT,
    revoked_at   BIGINT
);

CREATE INDEX user_sessions_user ON user_sessions (user_id, expires_at);
