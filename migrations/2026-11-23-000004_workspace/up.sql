-- The per-user workspace: presets, chat sessions with their messages, and
-- one table of shares for every kind of owned resource.

CREATE TABLE presets (
    id            TEXT    PRIMARY KEY NOT NULL,
    owner_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    system_prompt TEXT    NOT NULL,
    model         TEXT,
    temperature   DOUBLE,
    top_p         DOUBLE,
    max_tokens    BIGINT,
    is_public     BOOLEAN NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE INDEX presets_owner ON presets (owner_id, updated_at);

CREATE TABLE chat_sessions (
    id            TEXT   PRIMARY KEY NOT NULL,
    owner_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         TEXT   NOT NULL,
    model         TEXT,
    preset_id     TEXT   REFERENCES presets (id) ON DELETE SET NULL,
    message_count BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Listings go newest first by (updated_at, id), per owner or overall.
CREATE INDEX chat_sessions_owner ON chat_sessions (owner_id, updated_at DESC, id DESC);
CREATE INDEX chat_sessions_updated ON chat_sessions (updated_at DESC, id DESC);

CREATE TABLE chat_messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id        TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    model             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    citations         TEXT,
    interrupted       BOOLEAN NOT NULL DEFAULT 0
);

CREATE INDEX chat_messages_session ON chat_messages (session_id, id);

-- A share: (kind of resource, its id) with one user at one level. The
-- resource is not a foreign key (it is in one of several tables), so each
-- resource table's delete trigger removes its shares.
CREATE TABLE grants (
    resource_type TEXT   NOT NULL CHECK (resource_type IN ('session', 'collection')),
    resource_id   TEXT   NOT NULL,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    level         TEXT   NOT NULL CHECK (level IN ('read', 'write', 'admin')),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, user_id)
);

CREATE INDEX grants_user ON grants (user_id, resource_type);

-- Fires for cascades too (a deleted owner's sessions), so no share outlives
-- its session.
CREATE TRIGGER chat_sessions_drop_grants AFTER DELETE ON chat_sessions
BEGIN
    DELETE FROM grants WHERE resource_type = 'session' AND resource_id = OLD.id;
END;
