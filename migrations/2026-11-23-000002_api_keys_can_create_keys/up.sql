-- An API key may create further API keys only if it was made with this
-- flag; existing keys cannot.
ALTER TABLE api_keys ADD COLUMN can_create_keys BOOLEAN NOT NULL DEFAULT 0
    CHECK (can_create_keys IN (0, 1));
