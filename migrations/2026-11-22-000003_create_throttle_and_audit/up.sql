-- Login throttling counters keyed by 'user:<lowercased name>' or 'addr:<ip>'.
CREATE TABLE login_throttle (
    key          TEXT    PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until BIGINT,
    updated_at   BIGINT  NOT NULL
);

-- Every admin and security event. The actor's name is copied so the entry
-- stays readable after the user is deleted.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at          BIGINT  NOT NULL,
    actor_id    TEXT    REFERENCES users (id) ON DELETE SET NULL,
    actor       TEXT,
    action      TEXT    NOT NULL,
    target      TEXT,
    client_addr TEXT,
    details     TEXT
);

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, at);
