DROP TRIGGER rag_collections_drop_grants;
DROP TABLE rag_chunks;
DROP TABLE rag_documents;
DROP TABLE rag_collections;
