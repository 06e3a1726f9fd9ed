-- One row per inference request: who (user, API key), which model and
-- endpoint, how many tokens, how long. For quotas and metrics.
CREATE TABLE usage_records (
    id                INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at                BIGINT  NOT NULL,
    user_id           TEXT    REFERENCES users (id) ON DELETE SET NULL,
    api_key_id        TEXT    REFERENCES api_keys (id) ON DELETE SET NULL,
    model             TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    duration_ms       BIGINT  NOT NULL
);

CREATE INDEX usage_records_user ON usage_records (user_id, at);
CREATE INDEX usage_records_key ON usage_records (api_key_id, at);
