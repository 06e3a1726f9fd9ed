//! RAG collections: named sets of documents a user owns and may share like
//! a chat session, each document indexed into chunks with embeddings.
//!
//! A document is `indexing` from its upload until its chunks are stored
//! (`ready`) or it failed (`failed`, with a message for the uploader); its
//! chunks appear all at once, in the transaction that marks it ready, so
//! a search never sees half a document.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::workspace::{Cursor, Listing, OwnerRef};
use crate::{CollectionId, DocumentId, Timestamp, UserId};

/// A collection of documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Id.
    pub id: CollectionId,
    /// Name.
    pub name: String,
    /// What it holds, in the owner's words.
    pub description: String,
    /// Owner.
    pub owner: OwnerRef,
    /// Documents in it, whatever their status.
    pub document_count: i64,
    /// Chunks of its ready documents.
    pub chunk_count: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change (a document added or indexed counts).
    pub updated_at: Timestamp,
}

/// A collection to create.
#[derive(Debug, Clone)]
pub struct NewCollection {
    /// Owner.
    pub owner: UserId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// Changes to a collection; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct CollectionPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct CollectionQuery {
    /// Whose collections.
    pub listing: Listing,
    /// Case-insensitive text in the name.
    pub q: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Start after this row.
    pub cursor: Option<Cursor>,
}

/// Where a document is in its indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Uploaded; text extraction, chunking or embedding under way.
    Indexing,
    /// Its chunks are searchable.
    Ready,
    /// It could not be indexed; nothing of it is searchable.
    Failed,
}

impl DocumentStatus {
    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Indexing => "indexing",
            DocumentStatus::Ready => "ready",
            DocumentStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DocumentStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "indexing" => Ok(DocumentStatus::Indexing),
            "ready" => Ok(DocumentStatus::Ready),
            "failed" => Ok(DocumentStatus::Failed),
            _ => Err(()),
        }
    }
}

/// A document in a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Id.
    pub id: DocumentId,
    /// The collection it is in.
    pub collection_id: CollectionId,
    /// Its name (the uploaded file's name, or the one given).
    pub name: String,
    /// The content type it was read as (`text/plain`, `text/markdown`,
    /// `text/html`, `application/pdf`), as uploaded until it is read.
    pub content_type: String,
    /// Its size as uploaded, in bytes.
    pub bytes: i64,
    /// Where its indexing is.
    pub status: DocumentStatus,
    /// Why it failed, for the uploader.
    pub error: Option<String>,
    /// Chunks stored (0 until ready).
    pub chunks: i64,
    /// Upload time.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
}

/// A document to add, as `indexing`.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Name.
    pub name: String,
    /// Content type as uploaded.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: i64,
}

/// A chunk to store with its document.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    /// Position among the document's chunks, from 0.
    pub index: i64,
    /// The text.
    pub text: String,
    /// The embedding, as little-endian f32s.
    pub embedding: Vec<u8>,
}

/// How indexing a document ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Indexed {
    /// Its text as chunks, and the content type it was read as.
    Ready {
        /// What it was read as.
        content_type: String,
        /// The chunks, in order.
        chunks: Vec<NewChunk>,
    },
    /// Why it could not be indexed.
    Failed(String),
}

/// One chunk's embedding, for the search cache.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    /// The chunk's row id.
    pub chunk_id: i64,
    /// Little-endian f32s.
    pub embedding: Vec<u8>,
}

/// A stored chunk with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHit {
    /// The chunk's row id.
    pub chunk_id: i64,
    /// Its text.
    pub text: String,
    /// Its position in the document.
    pub chunk_index: i64,
    /// The document's id.
    pub document_id: DocumentId,
    /// The document's name.
    pub document_name: String,
    /// The collection's id.
    pub collection_id: CollectionId,
    /// The collection's name.
    pub collection_name: String,
}

/// Documents per status in a set of collections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Still indexing.
    pub indexing: i64,
    /// Searchable.
    pub ready: i64,
    /// Failed.
    pub failed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            DocumentStatus::Indexing,
            DocumentStatus::Ready,
            DocumentStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert_eq!("done".parse::<DocumentStatus>(), Err(()));
    }
}
