-- Quotas: a user's own limits in place of their role's defaults, and the
-- counters admissions check. A limit column is NULL for "the role's
-- default", -1 for unlimited, otherwise the limit.
CREATE TABLE quota_overrides (
    user_id             TEXT   PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    requests_per_minute BIGINT CHECK (requests_per_minute IS NULL OR requests_per_minute >= -1),
    tokens_per_day      BIGINT CHECK (tokens_per_day IS NULL OR tokens_per_day >= -1),
    max_concurrent      BIGINT CHECK (max_concurrent IS NULL OR max_concurrent >= -1),
    updated_at          BIGINT NOT NULL
);

-- One row per counted request of a subject (`user:<id>` or
-- `guest:<network>`) in the last minute: a sliding window, exact under
-- concurrency because admissions are write transactions.
CREATE TABLE quota_requests (
    id      INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    subject TEXT    NOT NULL,
    at_ms   BIGINT  NOT NULL
);
CREATE INDEX quota_requests_subject ON quota_requests (subject, at_ms);
CREATE INDEX quota_requests_at ON quota_requests (at_ms);

-- Tokens per subject and UTC day (days since the epoch).
CREATE TABLE quota_tokens (
    subject TEXT   NOT NULL,
    day     BIGINT NOT NULL,
    tokens  BIGINT NOT NULL,
    PRIMARY KEY (subject, day)
);
