-- Invitations: an administrator's one-time code that lets someone create
-- their own account with a set role. Only the SHA-256 digest of the code
-- is stored. Rows stay after use, revocation or expiry, as the record of
-- who invited whom.

CREATE TABLE invitations (
    id              TEXT   PRIMARY KEY NOT NULL,
    code_hash       BLOB   NOT NULL UNIQUE,
    -- Guests need no account: an invitation makes a Viewer at least.
    role            TEXT   NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    note            TEXT,
    -- The inviting account (NULL for the operator's CLI, or once deleted)
    -- and its name as it was, so the record outlives the account.
    created_by      TEXT   REFERENCES users (id) ON DELETE SET NULL,
    created_by_name TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    used_by         TEXT   REFERENCES users (id) ON DELETE SET NULL,
    revoked_at      BIGINT,
    -- Used and revoked exclude each other.
    CHECK (used_at IS NULL OR revoked_at IS NULL)
);

-- Listings go newest first by (created_at, id).
CREATE INDEX invitations_created ON invitations (created_at DESC, id DESC);
