//! Bodies of the RAG routes: collections, documents, search and the
//! citations chat answers carry.

use offgrid_domain::rag::{Document as DomainDocument, DocumentStatus};
use offgrid_domain::{CollectionId, DocumentId, Timestamp};
use offgrid_workspace::{CollectionView, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UserRef;

/// A document's indexing status (`offgrid_domain::rag::DocumentStatus`).
#[derive(Serialize, ToSchema)]
#[schema(as = DocumentStatus)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum DocumentStatusSchema {
    Indexing,
    Ready,
    Failed,
}

/// A RAG collection as its caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    /// Id.
    #[schema(value_type = String)]
    pub id: CollectionId,
    /// `rag.collection`.
    pub object: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Owner.
    pub owner: UserRef,
    /// The caller's standing: `owner`, `admin`, `write` or `read`.
    pub permission: String,
    /// Documents, whatever their status.
    pub document_count: i64,
    /// Searchable chunks.
    pub chunk_count: i64,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Last change, RFC 3339.
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl From<CollectionView> for Collection {
    fn from(view: CollectionView) -> Self {
        let c = view.collection;
        Collection {
            id: c.id,
            object: "rag.collection".to_owned(),
            name: c.name,
            description: c.description,
            owner: UserRef {
                id: c.owner.id,
                username: c.owner.username,
            },
            permission: view.permission.as_str().to_owned(),
            document_count: c.document_count,
            chunk_count: c.chunk_count,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A page of collections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollectionList {
    /// `list`.
    pub object: String,
    /// Most recently changed first.
    pub data: Vec<Collection>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/rag/collections`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// Name, 1 to 200 characters.
    pub name: String,
    /// What it holds, at most 2,000 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /v1/rag/collections/{id}` (admin access).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A document in a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Document {
    /// Id.
    #[schema(value_type = String)]
    pub id: DocumentId,
    /// `rag.document`.
    pub object: String,
    /// Its collection.
    #[schema(value_type = String)]
    pub collection_id: CollectionId,
    /// File name, or the name given.
    pub name: String,
    /// What it was read as (as declared until then).
    pub content_type: String,
    /// Size as uploaded.
    pub bytes: i64,
    /// `indexing`, `ready` or `failed`.
    #[schema(value_type = DocumentStatusSchema)]
    pub status: DocumentStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Searchable chunks (0 until ready).
    pub chunks: i64,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Last status change, RFC 3339.
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl From<DomainDocument> for Document {
    fn from(d: DomainDocument) -> Self {
        Document {
            id: d.id,
            object: "rag.document".to_owned(),
            collection_id: d.collection_id,
            name: d.name,
            content_type: d.content_type,
            bytes: d.bytes,
            status: d.status,
            error: d.error,
            chunks: d.chunks,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A page of documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DocumentList {
    /// `list`.
    pub object: String,
    /// Newest first.
    pub data: Vec<Document>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/rag/collections/{id}/documents` as JSON (the other form is a
/// multipart upload with a `file` part).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDocumentRequest {
    /// Name (a `.md` or `.html` name reads the text as such).
    pub name: String,
    /// The text.
    pub text: String,
}

/// `POST /v1/rag/search`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Collections to search (default: every one the caller owns or has
    /// been shared).
    #[serde(default)]
    pub collection_ids: Option<Vec<String>>,
    /// Results, 1 to 50 (default 5).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Lowest cosine similarity kept, -1 to 1.
    #[serde(default)]
    pub min_score: Option<f32>,
}

/// A document or collection named in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamedRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    /// Cosine similarity to the query, -1 to 1.
    pub score: f32,
    /// The chunk's text.
    pub text: String,
    /// Its position in its document, from 0.
    pub chunk_index: i64,
    /// Its document.
    pub document: NamedRef,
    /// Its collection.
    pub collection: NamedRef,
}

impl From<SearchHit> for SearchResult {
    fn from(h: SearchHit) -> Self {
        let c = h.chunk;
        SearchResult {
            score: h.score,
            text: c.text,
            chunk_index: c.chunk_index,
            document: NamedRef {
                id: c.document_id.as_str().to_owned(),
                name: c.document_name,
            },
            collection: NamedRef {
                id: c.collection_id.as_str().to_owned(),
                name: c.collection_name,
            },
        }
    }
}

/// Search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// `list`.
    pub object: String,
    /// Best first.
    pub data: Vec<SearchResult>,
}

/// A source a chat answer was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    /// The document.
    pub document: NamedRef,
    /// Its collection.
    pub collection: NamedRef,
    /// The chunk's position in the document.
    pub chunk_index: i64,
    /// Its similarity to the question.
    pub score: f32,
}

impl From<&SearchHit> for Citation {
    fn from(h: &SearchHit) -> Self {
        let r = SearchResult::from(h.clone());
        Citation {
            document: r.document,
            collection: r.collection,
            chunk_index: r.chunk_index,
            score: r.score,
        }
    }
}
