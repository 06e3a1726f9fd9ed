-- RAG: collections of documents, owned like chat sessions and shared
-- through the same grants table; documents are indexed into chunks whose
-- embeddings are stored as little-endian f32 blobs.
CREATE TABLE rag_collections (
    id             TEXT   PRIMARY KEY NOT NULL,
    owner_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT   NOT NULL,
    description    TEXT   NOT NULL DEFAULT '',
    document_count BIGINT NOT NULL DEFAULT 0,
    chunk_count    BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX rag_collections_owner ON rag_collections (owner_id, updated_at, id);

CREATE TABLE rag_documents (
    id            TEXT   PRIMARY KEY NOT NULL,
    collection_id TEXT   NOT NULL REFERENCES rag_collections (id) ON DELETE CASCADE,
    name          TEXT   NOT NULL,
    content_type  TEXT   NOT NULL,
    bytes         BIGINT NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('indexing', 'ready', 'failed')),
    error         TEXT,
    chunks        BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX rag_documents_collection ON rag_documents (collection_id, created_at, id);

CREATE TABLE rag_chunks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    document_id   TEXT    NOT NULL REFERENCES rag_documents (id) ON DELETE CASCADE,
    collection_id TEXT    NOT NULL REFERENCES rag_collections (id) ON DELETE CASCADE,
    chunk_index   BIGINT  NOT NULL,
    text          TEXT    NOT NULL,
    embedding     BLOB    NOT NULL
);
CREATE INDEX rag_chunks_collection ON rag_chunks (collection_id, id);
CREATE INDEX rag_chunks_document ON rag_chunks (document_id, chunk_index);

-- Fires for cascades too (a deleted owner's collections), so no share
-- outlives its collection.
CREATE TRIGGER rag_collections_drop_grants AFTER DELETE ON rag_collections
BEGIN
    DELETE FROM grants WHERE resource_type = 'collection' AND resource_id = OLD.id;
END;
