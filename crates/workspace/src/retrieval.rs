//! Searching collections: which collections a request may search (checked
//! on every request, so a revoked share stops retrieval at once), and a
//! brute-force cosine search over their chunks' embeddings.
//!
//! The embeddings of each searched collection are kept in memory as one
//! row-major matrix (loading 100,000 blobs from SQLite costs more than
//! scoring them), dropped when a document is indexed or removed and when
//! the cache outgrows [`MAX_CACHED_FLOATS`]. A load that raced with a
//! change is used once and not kept, so the cache never serves a matrix
//! older than the last change it was told about.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use offgrid_domain::CollectionId;
use offgrid_domain::rag::{ChunkHit, Collection, CollectionQuery, StatusCounts};
use offgrid_domain::repo::CollectionRepository;
use offgrid_domain::workspace::{GrantLevel, Listing, Reader};

use crate::{Actor, Workspace, WorkspaceError};

/// Most results of one search.
pub const MAX_TOP_K: usize = 50;
/// Most collections one search covers.
pub const MAX_COLLECTIONS: usize = 200;
/// Floats the cache holds before it starts over (1 GiB of f32).
pub const MAX_CACHED_FLOATS: usize = 256 << 20;

/// One collection's embeddings.
#[derive(Debug, Default)]
struct Matrix {
    /// Chunk ids, one per row.
    ids: Vec<i64>,
    /// Rows of `dim` floats.
    rows: Vec<f32>,
}

#[derive(Debug, Default)]
struct Cache {
    matrices: HashMap<String, Arc<Matrix>>,
    /// Bumped by every change to a collection's chunks.
    versions: HashMap<String, u64>,
    floats: usize,
}

/// The in-memory side of retrieval, shared by every clone of the service.
#[derive(Debug, Default)]
pub(crate) struct Retrieval {
    cache: Mutex<Cache>,
}

impl Retrieval {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a collection's matrix: its chunks changed.
    pub(crate) fn forget(&self, id: &CollectionId) {
        let mut cache = self.lock();
        if let Some(m) = cache.matrices.remove(id.as_str()) {
            cache.floats = cache.floats.saturating_sub(m.rows.len());
        }
        *cache.versions.entry(id.as_str().to_owned()).or_default() += 1;
    }

    /// The collection's matrix, from the cache or loaded through `repo`.
    fn matrix(
        &self,
        repo: &dyn CollectionRepository,
        reader: &Reader,
        id: &CollectionId,
        dim: usize,
    ) -> Result<Arc<Matrix>, WorkspaceError> {
        let version = {
            let cache = self.lock();
            if let Some(m) = cache.matrices.get(id.as_str()) {
                return Ok(m.clone());
            }
            cache.versions.get(id.as_str()).copied().unwrap_or(0)
        };
        let stored = repo.embeddings(reader, id)?;
        let mut m = Matrix {
            ids: Vec::with_capacity(stored.len()),
            rows: Vec::with_capacity(stored.len().saturating_mul(dim)),
        };
        for e in stored {
            // A blob of another length (another model's) is skipped.
            if offgrid_rag::decode_into(&e.embedding, dim, &mut m.rows).is_ok() {
                m.ids.push(e.chunk_id);
            }
        }
        let m = Arc::new(m);
        let mut cache = self.lock();
        if cache.versions.get(id.as_str()).copied().unwrap_or(0) == version {
            if cache.floats.saturating_add(m.rows.len()) > MAX_CACHED_FLOATS {
                cache.matrices.clear();
                cache.floats = 0;
            }
            cache.floats += m.rows.len();
            cache.matrices.insert(id.as_str().to_owned(), m.clone());
        }
        Ok(m)
    }
}

/// The collections one request searches, checked for the caller.
#[derive(Debug, Clone)]
pub struct RagScope {
    reader: Reader,
    /// The collections, each readable by the caller.
    pub collections: Vec<Collection>,
    /// Their documents by status.
    pub status: StatusCounts,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Cosine similarity to the query, -1 to 1.
    pub score: f32,
    /// The chunk and where it comes from.
    pub chunk: ChunkHit,
}

impl Workspace {
    /// The collections a search by the caller covers: `ids` (each one
    /// readable, else `NotFound`, the same for a missing one), or without
    /// them every collection the caller owns or has been shared (an
    /// administrator's role alone does not add other users' collections
    /// to their own searches; they may name them).
    pub fn rag_scope(
        &self,
        actor: &Actor,
        ids: Option<&[CollectionId]>,
    ) -> Result<RagScope, WorkspaceError> {
        let mut collections = Vec::new();
        let reader = match ids {
            Some(ids) => {
                if ids.len() > MAX_COLLECTIONS {
                    return Err(WorkspaceError::invalid(
                        "collection_ids",
                        format!("at most {MAX_COLLECTIONS} collections"),
                    ));
                }
                let mut reader = None;
                for id in ids {
                    if collections.iter().any(|c: &Collection| &c.id == id) {
                        continue;
                    }
                    let (r, view) = self.open_collection(actor, id, GrantLevel::Read, true, "")?;
                    reader = Some(r);
                    collections.push(view.collection);
                }
                match reader {
                    Some(r) => r,
                    None => crate::shares::reader(&actor.principal, false)?,
                }
            }
            None => {
                let reader = crate::shares::reader(&actor.principal, false)?;
                for listing in [Listing::Own, Listing::SharedWithMe] {
                    let page = self.collections.list(
                        &reader,
                        &CollectionQuery {
                            listing,
                            q: None,
                            limit: i64::try_from(MAX_COLLECTIONS).unwrap_or(200),
                            cursor: None,
                        },
                    )?;
                    collections.extend(page.data.into_iter().map(|v| v.item));
                }
                collections.truncate(MAX_COLLECTIONS);
                reader
            }
        };
        let ids: Vec<CollectionId> = collections.iter().map(|c| c.id.clone()).collect();
        let status = self.collections.status_counts(&reader, &ids)?;
        Ok(RagScope {
            reader,
            collections,
            status,
        })
    }

    /// The `top_k` chunks of the scope's collections most similar to
    /// `query` (an embedding), scoring at least `min_score`, best first.
    /// Chunks of a collection the reader lost meanwhile are left out.
    pub fn rag_search(
        &self,
        scope: &RagScope,
        query: &[f32],
        top_k: usize,
        min_score: f32,
    ) -> Result<Vec<SearchHit>, WorkspaceError> {
        let top_k = top_k.clamp(1, MAX_TOP_K);
        let mut best: Vec<(i64, f32)> = Vec::new();
        for c in &scope.collections {
            // A collection deleted or unshared since the scope was made is
            // left out, not an error.
            let m = match self.retrieval.matrix(
                self.collections.as_ref(),
                &scope.reader,
                &c.id,
                query.len(),
            ) {
                Ok(m) => m,
                Err(WorkspaceError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            for (row, score) in offgrid_rag::search_slice(query, &m.rows, top_k, min_score) {
                if let Some(id) = m.ids.get(row) {
                    best.push((*id, score));
                }
            }
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        best.truncate(top_k);
        let ids: Vec<i64> = best.iter().map(|(id, _)| *id).collect();
        let chunks = self.collections.chunks(&scope.reader, &ids)?;
        Ok(best
            .into_iter()
            .filter_map(|(id, score)| {
                let chunk = chunks.iter().find(|c| c.chunk_id == id)?.clone();
                Some(SearchHit { score, chunk })
            })
            .collect())
    }
}
