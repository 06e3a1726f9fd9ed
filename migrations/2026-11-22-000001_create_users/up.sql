-- Accounts. Usernames and e-mails are unique without regard to ASCII case.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT    UNIQUE COLLATE NOCASE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'viewer', 'guest')),
    disabled      BOOLEAN NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    is_system     BOOLEAN NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)),
    token_epoch   BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    last_login_at BIGINT
);

CREATE INDEX users_role ON users (role, disabled);

-- The built-in owner of everything made in single-user mode. Its hash '!'
-- matches no password and the login lookup skips it, so it never logs in.
INSERT INTO users (id, username, email, display_name, password_hash, role, disabled, is_system,
                   token_epoch, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'system', NULL, 'Local owner', '!', 'user', 0, 1,
        0, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER));
