//! Indexing uploaded documents in the background: one worker thread takes
//! documents in upload order, extracts their text (`offgrid-rag`, whose
//! PDF and HTML parsers run guarded against panics and overruns), cuts it
//! into chunks by the embedding model's own token count, embeds the chunks
//! in batches and stores them with the document's `ready` status in one
//! transaction. Any failure marks the document `failed` with a message
//! for the uploader and stores nothing of it.
//!
//! The queue is bounded by the bytes it holds; a full queue refuses an
//! upload before its record is made. Documents still `indexing` when the
//! server starts (their worker died with the last process) are marked
//! failed.

use std::collections::{HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use offgrid_domain::rag::{Document, Indexed, NewChunk};
use offgrid_domain::repo::CollectionRepository;
use offgrid_domain::{CollectionId, DocumentId};
use offgrid_rag::{ChunkConfig, DocumentKind, ExtractLimits, TokenCounter};

use crate::retrieval::Retrieval;
use crate::{Actor, Workspace, WorkspaceError, now};

/// The embedding model behind indexing and queries, as the indexer needs
/// it. Implemented over the inference crate by the HTTP layer.
pub trait EmbeddingBackend: Send + Sync {
    /// Counts tokens as the model reads them (for chunking).
    ///
    /// # Errors
    /// A message for the uploader (the model is missing, say).
    fn counter(&self) -> Result<Box<dyn TokenCounter + Send>, String>;

    /// One unit vector per text, in order. Blocking.
    ///
    /// # Errors
    /// A message for the uploader.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// How the indexer works.
#[derive(Debug, Clone, Copy)]
pub struct IndexerConfig {
    /// Bounds on extraction (`max_bytes` is the upload limit).
    pub limits: ExtractLimits,
    /// Chunk sizes.
    pub chunks: ChunkConfig,
    /// Bytes of uploads waiting at most, all users together.
    pub max_queued_bytes: usize,
    /// Chunks embedded per call: the embedding slot is given back between
    /// calls, so interactive requests wait at most one batch (8 chunks of
    /// 256 tokens take about 2 s on two cores).
    pub batch: usize,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            limits: ExtractLimits::default(),
            chunks: ChunkConfig::default(),
            max_queued_bytes: 256 << 20,
            batch: 8,
        }
    }
}

/// The message of a document whose indexing the last process left.
pub const INTERRUPTED: &str = "the server stopped while indexing this document: upload it again";

struct Job {
    collection: CollectionId,
    document: DocumentId,
    name: String,
    declared: Option<String>,
    content: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    bytes: usize,
}

struct Worker {
    backend: Arc<dyn EmbeddingBackend>,
    config: IndexerConfig,
}

/// The indexer's state, shared by every clone of the service.
#[derive(Default)]
pub(crate) struct Indexer {
    queue: Mutex<Queue>,
    wake: Condvar,
    worker: OnceLock<Worker>,
    started: AtomicBool,
    /// Documents and collections deleted while queued or being indexed:
    /// their work stops before the next batch.
    gone: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer").finish_non_exhaustive()
    }
}

impl Indexer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gone(&self) -> MutexGuard<'_, HashSet<String>> {
        self.gone.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the work on a deleted document or collection: queued jobs
    /// are dropped (their room given back), a running one stops before
    /// its next batch.
    pub(crate) fn cancel(&self, id: &str) {
        let mut queue = self.lock();
        let mut freed = 0;
        queue.jobs.retain(|j| {
            let keep = j.document.as_str() != id && j.collection.as_str() != id;
            if !keep {
                freed += j.content.len();
            }
            keep
        });
        queue.bytes = queue.bytes.saturating_sub(freed);
        drop(queue);
        let mut gone = self.gone();
        // Only ids of work in progress matter: a bounded set.
        if gone.len() >= 1024 {
            gone.clear();
        }
        gone.insert(id.to_owned());
    }

    fn is_gone(&self, job: &Job) -> bool {
        let gone = self.gone();
        gone.contains(job.document.as_str()) || gone.contains(job.collection.as_str())
    }
}

impl Workspace {
    /// Starts the indexing thread (once; later calls change nothing) and
    /// fails what the last process left `indexing`. The thread ends when
    /// the last clone of this service is dropped.
    ///
    /// # Errors
    /// The database could not be updated.
    pub fn start_indexer(
        &self,
        backend: Arc<dyn EmbeddingBackend>,
        config: IndexerConfig,
    ) -> Result<(), WorkspaceError> {
        if self.indexer.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let left = self.collections.fail_unfinished(INTERRUPTED, now())?;
        if left > 0 {
            tracing::warn!(
                documents = left,
                "indexing interrupted by the last shutdown"
            );
        }
        let indexer = Arc::downgrade(&self.indexer);
        let repo = self.collections.clone();
        let retrieval = self.retrieval.clone();
        std::thread::Builder::new()
            .name("offgrid-indexer".into())
            .spawn(move || run(&indexer, repo.as_ref(), &retrieval))
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the indexing thread");
                WorkspaceError::Overloaded("indexing is not available")
            })?;
        // Uploads are taken only once the thread runs.
        let _ = self.indexer.worker.set(Worker { backend, config });
        Ok(())
    }

    /// The upload limit in bytes, once the indexer runs.
    pub fn max_upload_bytes(&self) -> Option<usize> {
        self.indexer.worker.get().map(|w| w.config.limits.max_bytes)
    }

    /// Adds a document (write level) and queues it for indexing; it is
    /// returned `indexing`. `Overloaded` when the indexer is not running
    /// or its queue is full, `Invalid` over the upload limit; in both
    /// cases nothing is stored.
    pub fn upload_document(
        &self,
        actor: &Actor,
        id: &CollectionId,
        name: &str,
        declared: Option<&str>,
        content: Vec<u8>,
    ) -> Result<Document, WorkspaceError> {
        let worker = self
            .indexer
            .worker
            .get()
            .ok_or(WorkspaceError::Overloaded("indexing is not available"))?;
        let max = worker.config.limits.max_bytes;
        if content.len() > max {
            return Err(WorkspaceError::invalid(
                "file",
                offgrid_rag::ExtractError::TooLarge {
                    size: content.len(),
                    max,
                }
                .to_string(),
            ));
        }
        // Room is taken before the record is made, and given back if it
        // cannot be.
        {
            let mut queue = self.indexer.lock();
            if queue.bytes.saturating_add(content.len()) > worker.config.max_queued_bytes {
                return Err(WorkspaceError::Overloaded(
                    "too many documents are waiting to be indexed: try again in a minute",
                ));
            }
            queue.bytes += content.len();
        }
        let declared_type = declared.unwrap_or("text/plain");
        let document = match self.add_document(actor, id, name, declared_type, content.len()) {
            Ok(d) => d,
            Err(e) => {
                let mut queue = self.indexer.lock();
                queue.bytes = queue.bytes.saturating_sub(content.len());
                return Err(e);
            }
        };
        let mut queue = self.indexer.lock();
        queue.jobs.push_back(Job {
            collection: id.clone(),
            document: document.id.clone(),
            name: document.name.clone(),
            declared: declared.map(str::to_owned),
            content,
        });
        self.indexer.wake.notify_one();
        Ok(document)
    }
}

/// The worker: takes jobs until the service is gone.
fn run(indexer: &Weak<Indexer>, repo: &dyn CollectionRepository, retrieval: &Retrieval) {
    loop {
        let Some(strong) = indexer.upgrade() else {
            return;
        };
        let job = {
            let mut queue = strong.lock();
            if queue.jobs.is_empty() {
                queue = strong
                    .wake
                    .wait_timeout(queue, Duration::from_secs(1))
                    .map_or_else(|p| p.into_inner().0, |(q, _)| q);
            }
            queue.jobs.pop_front()
        };
        let Some(job) = job else { continue };
        let Some(worker) = strong.worker.get() else {
            return;
        };
        let stop = || strong.is_gone(&job);
        let outcome =
            catch_unwind(AssertUnwindSafe(|| index(worker, &job, &stop))).unwrap_or_else(|_| {
                Indexed::Failed("the document could not be indexed (internal error)".into())
            });
        {
            let mut queue = strong.lock();
            queue.bytes = queue.bytes.saturating_sub(job.content.len());
        }
        drop(strong);
        if let Indexed::Failed(why) = &outcome {
            tracing::info!(document = %job.document, reason = %why, "document not indexed");
        }
        store(repo, retrieval, &job, outcome);
    }
}

/// Stores how indexing ended, retrying a busy database; chunks that cannot
/// be stored leave the document failed, never `indexing`.
fn store(repo: &dyn CollectionRepository, retrieval: &Retrieval, job: &Job, outcome: Indexed) {
    let mut outcome = outcome;
    for attempt in 0..4 {
        match repo.finish_document(&job.document, &outcome, now()) {
            Ok(_) => {
                retrieval.forget(&job.collection);
                return;
            }
            Err(e) => {
                tracing::error!(document = %job.document, attempt, error = %e, "cannot store an indexed document");
                std::thread::sleep(Duration::from_millis(500));
                if attempt >= 1 {
                    outcome =
                        Indexed::Failed("the document could not be stored: try again later".into());
                }
            }
        }
    }
}

/// Extracts, chunks and embeds one document, asking `stop` before each
/// batch (the document was deleted).
fn index(worker: &Worker, job: &Job, stop: &dyn Fn() -> bool) -> Indexed {
    let extracted = match offgrid_rag::extract_document(
        &job.content,
        &job.name,
        job.declared.as_deref(),
        &worker.config.limits,
    ) {
        Ok(e) => e,
        Err(e) => return Indexed::Failed(e.to_string()),
    };
    let counter = match worker.backend.counter() {
        Ok(c) => c,
        Err(e) => return Indexed::Failed(e),
    };
    let pieces = offgrid_rag::chunk(&extracted.text, counter.as_ref(), &worker.config.chunks);
    if pieces.is_empty() {
        return Indexed::Failed("no text was found in the document".into());
    }
    if pieces.len() > MAX_CHUNKS {
        return Indexed::Failed(format!(
            "the document is too long to index: {} pieces, the limit is {MAX_CHUNKS} (split it into smaller documents)",
            pieces.len()
        ));
    }
    let pieces: Vec<String> = pieces
        .into_iter()
        .flat_map(|c| split_bytes(&c.text, MAX_CHUNK_BYTES))
        .collect();
    let mut chunks = Vec::with_capacity(pieces.len());
    for batch in pieces.chunks(worker.config.batch.max(1)) {
        if stop() {
            return Indexed::Failed("the document was deleted".into());
        }
        let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
        let vectors = match worker.backend.embed(&texts) {
            Ok(v) if v.len() == texts.len() => v,
            Ok(_) => return Indexed::Failed("the embedding model gave a wrong answer".into()),
            Err(e) => return Indexed::Failed(e),
        };
        for (piece, vector) in batch.iter().zip(vectors) {
            chunks.push(NewChunk {
                index: i64::try_from(chunks.len()).unwrap_or(i64::MAX),
                text: piece.clone(),
                embedding: offgrid_rag::encode(&vector),
            });
        }
    }
    Indexed::Ready {
        content_type: mime(extracted.kind).to_owned(),
        chunks,
    }
}

/// Most chunks one document is cut into (about 5 MB of prose; at the
/// embedding model's pace on two cores, some twenty minutes of indexing).
pub const MAX_CHUNKS: usize = 5_000;
/// Longest chunk in bytes. The token count bounds ordinary text, but a
/// tokenizer reads a long run without spaces as one unknown token: such a
/// run would make one huge chunk, in every prompt and search result.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024;

/// `text` in pieces of at most `max` bytes, cut at character boundaries.
fn split_bytes(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// The content type a document was read as.
pub fn mime(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Text => "text/plain",
        DocumentKind::Markdown => "text/markdown",
        DocumentKind::Html => "text/html",
        DocumentKind::Pdf => "application/pdf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_are_cut_at_character_boundaries() {
        let text = "é".repeat(5000); // 10,000 bytes
        let pieces = split_bytes(&text, MAX_CHUNK_BYTES);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.len() <= MAX_CHUNK_BYTES));
        assert_eq!(pieces.concat(), text);
        assert_eq!(split_bytes("short", 10), vec!["short".to_owned()]);
        assert!(split_bytes("", 10).is_empty());
    }
}
