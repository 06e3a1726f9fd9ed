//! The workspace half of `cargo xtask bench workspace`, on a real SQLite
//! file, each measurement beside its peer in the same run. Prints one JSON
//! object (progress goes to stderr).
//!
//! - Sessions: 1,000 users × 100 chat sessions (and shares among them),
//!   then listing one user's sessions through `Workspace::list_sessions`
//!   (the repository's owner/share/admin filter included) against the same
//!   page read by a plain indexed query without any filter.
//! - RAG search: one user's collection of 100,000 chunks of 384-dimensional
//!   random unit vectors, searched (top 5) through `Workspace::rag_scope` +
//!   `Workspace::rag_search`: the first search (the matrix is loaded from
//!   SQLite), further cache misses (a fresh service each), and warm
//!   searches (cache hits), against `offgrid_rag::search_slice` on the
//!   same matrix in memory; then where a cache miss spends its time
//!   (SQLite, decoding, scoring, reading the hits). Then the same 100,000
//!   chunks spread over 10 collections of another user, searched at once.
//! - Ingest: when all-MiniLM-L6-v2 is installed (`$OFFGRID_MODELS_DIR`,
//!   else `$OFFGRID_HOME/models`, else `~/.offgrid-llm/models`), a ~200 KB
//!   prose document through `Workspace::upload_document` and the indexer
//!   until it is ready, against `Embedder::embed` on the same chunk texts
//!   in batches of 8, in rounds ordered peer, indexer, indexer, peer (so a
//!   drift in the shared machine's load hits both alike). Skipped (and
//!   said so) without the model.
//!
//! ```text
//! bench_workspace [--users 1000] [--sessions 100] [--samples 2000] [--dir DIR]
//!                 [--rag-chunks 100000] [--spread 10] [--queries 200] [--cold 10]
//!                 [--ingest-kib 200] [--ingest-rounds 2] [--skip-sessions]
//! ```
//!
//! `--rag-chunks 0` skips the search part, `--ingest-kib 0` the ingest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use offgrid_domain::principal::Credential;
use offgrid_domain::rag::{DocumentStatus, Indexed, NewChunk};
use offgrid_domain::repo::{
    ChatSessionRepository, CollectionRepository, GrantRepository, UserRepository,
};
use offgrid_domain::user::NewUser;
use offgrid_domain::workspace::{GrantLevel, NewChatSession, Reader, ResourceKind};
use offgrid_domain::{CollectionId, Principal, Role, SessionId, Timestamp, UserId};
use offgrid_inference::Embedder;
use offgrid_rag::{ExtractLimits, TokenCounter, TokenizerCounter};
use offgrid_storage::Database;
use offgrid_workspace::sessions::ListRequest;
use offgrid_workspace::{
    Actor, EmbeddingBackend, IndexerConfig, RagScope, Workspace, WorkspaceConfig,
};
use serde_json::{Map, Value, json};

/// Embedding dimension (all-MiniLM-L6-v2's).
const DIM: usize = 384;
/// Results per search.
const TOP_K: usize = 5;
/// Chunks per stored document when populating.
const CHUNKS_PER_DOC: usize = 1000;
/// Chunks per embedding call, as the indexer does by default.
const EMBED_BATCH: usize = 8;

struct Args {
    users: usize,
    sessions: usize,
    samples: usize,
    dir: Option<PathBuf>,
    rag_chunks: usize,
    spread: usize,
    queries: usize,
    cold: usize,
    ingest_kib: usize,
    ingest_rounds: usize,
    skip_sessions: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        users: 1000,
        sessions: 100,
        samples: 2000,
        dir: None,
        rag_chunks: 100_000,
        spread: 10,
        queries: 200,
        cold: 10,
        ingest_kib: 200,
        ingest_rounds: 2,
        skip_sessions: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--skip-sessions" {
            a.skip_sessions = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--users" => a.users = number()?,
            "--sessions" => a.sessions = number()?,
            "--samples" => a.samples = number()?,
            "--rag-chunks" => a.rag_chunks = number()?,
            "--spread" => a.spread = number()?.max(1),
            "--queries" => a.queries = number()?.max(1),
            "--cold" => a.cold = number()?,
            "--ingest-kib" => a.ingest_kib = number()?,
            "--ingest-rounds" => a.ingest_rounds = number()?.max(1),
            "--dir" => a.dir = Some(value.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// A tiny deterministic generator (xorshift), so every run lists the same
/// users and searches the same vectors.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A random unit vector of `DIM` components, appended to `out`.
    fn unit_into(&mut self, out: &mut Vec<f32>) {
        let start = out.len();
        for _ in 0..DIM {
            // 24 random bits to [-1, 1).
            out.push(((self.next() >> 40) as f32 / (1u64 << 23) as f32) - 1.0);
        }
        offgrid_rag::normalize(&mut out[start..]);
    }

    fn unit(&mut self) -> Vec<f32> {
        let mut v = Vec::with_capacity(DIM);
        self.unit_into(&mut v);
        v
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    ms(sorted[i])
}

fn summary(mut times: Vec<Duration>) -> Value {
    times.sort_unstable();
    json!({
        "p50_ms": percentile(&times, 0.5),
        "p99_ms": percentile(&times, 0.99),
    })
}

/// p50 and p95 (the RAG figures), with the sample count.
fn spread_of(mut times: Vec<Duration>) -> Value {
    if times.is_empty() {
        return Value::Null;
    }
    times.sort_unstable();
    json!({
        "p50_ms": percentile(&times, 0.5),
        "p95_ms": percentile(&times, 0.95),
        "samples": times.len(),
    })
}

fn p50(v: &Value) -> f64 {
    v["p50_ms"].as_f64().unwrap_or(f64::NAN)
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort_unstable();
    percentile(&times, 0.5)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn actor(id: &UserId) -> Actor {
    Actor::new(
        Principal {
            user_id: Some(id.clone()),
            role: Role::User,
            credential: Credential::Session {
                session_id: SessionId::generate(),
                from_cookie: false,
            },
        },
        None,
    )
}

fn new_user(db: &Database, username: &str) -> Result<UserId, String> {
    let u = UserRepository::create(
        db,
        NewUser {
            username: username.to_owned(),
            email: None,
            display_name: None,
            role: Role::User,
            password_hash: "x".into(),
        },
        Timestamp(1_800_000_000),
    )
    .map_err(err)?;
    Ok(u.id)
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir().map_err(err)?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let db = Database::open(&dir.join("offgrid.db")).map_err(err)?;
    db.migrate().map_err(err)?;
    let mut out = Map::new();
    if !args.skip_sessions {
        sessions(&db, &dir, &args, &mut out)?;
    }
    if args.rag_chunks > 0 {
        rag(&db, &dir, &args, &mut out)?;
    }
    if args.ingest_kib > 0 {
        out.insert("ingest".into(), ingest(&db, &args)?);
    }
    println!("{}", Value::Object(out));
    Ok(())
}

/// Listing one user's sessions among 1,000 × 100, filtered and plain.
fn sessions(
    db: &Database,
    dir: &Path,
    args: &Args,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    eprintln!(
        "bench_workspace: {} users × {} sessions",
        args.users, args.sessions
    );
    // The data: users, their sessions, and a few shares each.
    let started = Instant::now();
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        users.push(new_user(db, &format!("user{i:05}"))?);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (i, owner) in users.iter().enumerate() {
        for j in 0..args.sessions {
            let s = ChatSessionRepository::create(
                db,
                NewChatSession {
                    owner: owner.clone(),
                    title: format!("Session {j} of user {i}"),
                    model: None,
                    preset_id: None,
                },
                Timestamp(1_800_000_000 + (i * args.sessions + j) as i64),
            )
            .map_err(err)?;
            if j < 3 {
                let to = &users[rng.below(users.len())];
                if to != owner {
                    db.grant(
                        ResourceKind::Session,
                        s.id.as_str(),
                        to,
                        GrantLevel::Read,
                        Timestamp(1_800_000_000),
                    )
                    .map_err(err)?;
                }
            }
        }
    }
    let populate = started.elapsed();

    let ws = Workspace::new(&db.repositories(), WorkspaceConfig::default());
    let request = ListRequest {
        limit: Some(50),
        ..ListRequest::default()
    };
    // The same page without any access filter: the owner index alone.
    let mut raw =
        diesel::sqlite::SqliteConnection::establish(dir.join("offgrid.db").to_str().ok_or("path")?)
            .map_err(err)?;
    let plain = |conn: &mut diesel::sqlite::SqliteConnection, owner: &UserId| {
        diesel::sql_query(
            "SELECT id FROM chat_sessions WHERE owner_id = ? \
             ORDER BY updated_at DESC, id DESC LIMIT 50",
        )
        .bind::<diesel::sql_types::Text, _>(owner.as_str())
        .execute(conn)
    };
    // Warm both paths, then interleave them so drift hits both alike.
    for owner in users.iter().take(50) {
        ws.list_sessions(&actor(owner), &request).map_err(err)?;
        plain(&mut raw, owner).map_err(err)?;
    }
    let (mut filtered, mut unfiltered) = (Vec::new(), Vec::new());
    for _ in 0..args.samples {
        let owner = &users[rng.below(users.len())];
        let a = actor(owner);
        let t = Instant::now();
        let page = ws.list_sessions(&a, &request).map_err(err)?;
        filtered.push(t.elapsed());
        if page.data.len() != args.sessions.min(50) {
            return Err(format!("listed {} sessions", page.data.len()));
        }
        let t = Instant::now();
        plain(&mut raw, owner).map_err(err)?;
        unfiltered.push(t.elapsed());
    }
    let f = summary(filtered);
    let u = summary(unfiltered);
    let ratio = p50(&f) / p50(&u).max(1e-9);
    out.insert("users".into(), json!(args.users));
    out.insert("sessions_per_user".into(), json!(args.sessions));
    out.insert("populate_s".into(), json!(populate.as_secs_f64()));
    out.insert("samples".into(), json!(args.samples));
    out.insert("list_own_sessions".into(), f);
    out.insert("plain_query_same_page".into(), u);
    out.insert("filter_overhead_p50_ratio".into(), json!(ratio));
    Ok(())
}

/// One collection of the caller filled with `chunks` random unit vectors
/// (documents of [`CHUNKS_PER_DOC`] chunks, each stored ready in one
/// transaction, as the indexer does); returns its id and the matrix as
/// inserted (row order = chunk id order).
fn fill_collection(
    ws: &Workspace,
    db: &Database,
    who: &Actor,
    name: &str,
    chunks: usize,
    rng: &mut Rng,
) -> Result<(CollectionId, Vec<f32>), String> {
    let id = ws
        .create_collection(who, name, None)
        .map_err(err)?
        .collection
        .id;
    let mut matrix = Vec::with_capacity(chunks * DIM);
    let mut left = chunks;
    let mut d = 0;
    while left > 0 {
        let n = left.min(CHUNKS_PER_DOC);
        let doc = ws
            .add_document(who, &id, &format!("doc-{d:04}.txt"), "text/plain", n * 64)
            .map_err(err)?;
        let mut new = Vec::with_capacity(n);
        for i in 0..n {
            let row = matrix.len();
            rng.unit_into(&mut matrix);
            new.push(NewChunk {
                index: i as i64,
                text: format!("Chunk {i} of document {d} in {name}: short text."),
                embedding: offgrid_rag::encode(&matrix[row..]),
            });
        }
        let stored = db
            .finish_document(
                &doc.id,
                &Indexed::Ready {
                    content_type: "text/plain".into(),
                    chunks: new,
                },
                Timestamp(1_800_000_000),
            )
            .map_err(err)?;
        if stored.map(|s| s.status) != Some(DocumentStatus::Ready) {
            return Err(format!("document {d} of {name} was not stored ready"));
        }
        left -= n;
        d += 1;
    }
    Ok((id, matrix))
}

/// The chunk ids of a collection in row order, as the service's cache
/// holds them, checked against the inserted matrix.
fn stored_ids(
    db: &Database,
    reader: &Reader,
    id: &CollectionId,
    matrix: &[f32],
) -> Result<Vec<i64>, String> {
    let stored = db.embeddings(reader, id).map_err(err)?;
    let mut rows = Vec::with_capacity(matrix.len());
    let mut ids = Vec::with_capacity(stored.len());
    for e in stored {
        offgrid_rag::decode_into(&e.embedding, DIM, &mut rows).map_err(err)?;
        ids.push(e.chunk_id);
    }
    if rows != matrix {
        return Err("the stored embeddings differ from the inserted ones".into());
    }
    Ok(ids)
}

/// Times `rag_scope` + `rag_search` as one request; returns the total,
/// the scope's share and the hits' chunk ids.
fn timed_search(
    ws: &Workspace,
    who: &Actor,
    ids: Option<&[CollectionId]>,
    query: &[f32],
) -> Result<(Duration, Duration, Vec<i64>), String> {
    let t = Instant::now();
    let scope: RagScope = ws.rag_scope(who, ids).map_err(err)?;
    let scoped = t.elapsed();
    let hits = ws.rag_search(&scope, query, TOP_K, -1.0).map_err(err)?;
    let total = t.elapsed();
    if hits.len() != TOP_K {
        return Err(format!("{} hits instead of {TOP_K}", hits.len()));
    }
    Ok((
        total,
        scoped,
        hits.iter().map(|h| h.chunk.chunk_id).collect(),
    ))
}

/// RAG search: one collection of `rag_chunks`, then the same spread over
/// `spread` collections.
fn rag(db: &Database, dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<(), String> {
    let repos = db.repositories();
    let ws = Workspace::new(&repos, WorkspaceConfig::default());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);

    // One collection of all the chunks.
    eprintln!(
        "bench_workspace: RAG: {} chunks × {DIM} dims in one collection",
        args.rag_chunks
    );
    let owner = new_user(db, "rag-one")?;
    let who = actor(&owner);
    let reader = Reader::user(owner.clone());
    let started = Instant::now();
    let (cid, matrix) = fill_collection(&ws, db, &who, "one", args.rag_chunks, &mut rng)?;
    let populate = started.elapsed();
    let one = std::slice::from_ref(&cid);

    // The first search: the matrix comes from SQLite.
    let q = rng.unit();
    let (first, first_scope, _) = timed_search(&ws, &who, Some(one), &q)?;
    // More cache misses, each on a fresh service (same database, pool and
    // SQLite page cache).
    let mut cold = Vec::new();
    for _ in 0..args.cold {
        let fresh = Workspace::new(&repos, WorkspaceConfig::default());
        let q = rng.unit();
        cold.push(timed_search(&fresh, &who, Some(one), &q)?.0);
    }
    // Where a cache miss goes: the repository's read, decoding the blobs
    // into one matrix (as the service does), scoring, reading the hits.
    // The floor under the repository's read: SQLite alone walking the
    // same rows and reading every blob (`max` compares them, so each one
    // is loaded), nothing copied out to Rust.
    let mut conn =
        diesel::sqlite::SqliteConnection::establish(dir.join("offgrid.db").to_str().ok_or("path")?)
            .map_err(err)?;
    let (mut load, mut decode, mut scan) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.cold.clamp(1, 5) {
        let t = Instant::now();
        diesel::sql_query("SELECT max(embedding) FROM rag_chunks WHERE collection_id = ?")
            .bind::<diesel::sql_types::Text, _>(cid.as_str())
            .execute(&mut conn)
            .map_err(err)?;
        scan.push(t.elapsed());
        let t = Instant::now();
        let stored = db.embeddings(&reader, &cid).map_err(err)?;
        load.push(t.elapsed());
        let t = Instant::now();
        let mut rows = Vec::with_capacity(stored.len() * DIM);
        let mut ids = Vec::with_capacity(stored.len());
        for e in &stored {
            if offgrid_rag::decode_into(&e.embedding, DIM, &mut rows).is_ok() {
                ids.push(e.chunk_id);
            }
        }
        decode.push(t.elapsed());
        std::hint::black_box((rows, ids));
    }
    let ids = stored_ids(db, &reader, &cid, &matrix)?;

    // Warm: the service (cache hit) interleaved with the bare search on
    // the same matrix, same query.
    let (mut service, mut scope_part, mut search_part, mut raw, mut hits_read) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.queries {
        let q = rng.unit();
        // Which goes first alternates, so neither gains from the other.
        let bare = |raw: &mut Vec<Duration>| {
            let t = Instant::now();
            let best = offgrid_rag::search_slice(&q, &matrix, TOP_K, -1.0);
            raw.push(t.elapsed());
            best
        };
        let early = (i % 2 == 1).then(|| bare(&mut raw));
        let (total, scoped, got) = timed_search(&ws, &who, Some(one), &q)?;
        service.push(total);
        scope_part.push(scoped);
        search_part.push(total - scoped);
        let best = match early {
            Some(best) => best,
            None => bare(&mut raw),
        };
        let want: Vec<i64> = best.iter().map(|(row, _)| ids[*row]).collect();
        if got != want {
            return Err(format!("service hits {got:?}, bare search {want:?}"));
        }
        let t = Instant::now();
        let rows = db.chunks(&reader, &want).map_err(err)?;
        hits_read.push(t.elapsed());
        if rows.len() != TOP_K {
            return Err(format!("{} hit rows", rows.len()));
        }
    }
    let service = spread_of(service);
    let raw = spread_of(raw);
    let ratio = p50(&service) / p50(&raw).max(1e-9);
    out.insert(
        "rag_search".into(),
        json!({
            "chunks": args.rag_chunks,
            "dim": DIM,
            "top_k": TOP_K,
            "populate_s": populate.as_secs_f64(),
            "first_search_ms": ms(first),
            "first_search_scope_ms": ms(first_scope),
            "cold_fresh_service": spread_of(cold),
            "warm": service,
            "warm_scope": spread_of(scope_part),
            "warm_search": spread_of(search_part),
            "raw_search_slice": raw,
            "warm_raw_p50_ratio": ratio,
        }),
    );
    out.insert(
        "rag_profile".into(),
        json!({
            "sqlite_scan_only_ms": median(scan),
            "sqlite_load_ms": median(load),
            "decode_ms": median(decode),
            "score_p50_ms": p50(&raw),
            "read_hits": spread_of(hits_read),
            "scope_p50_ms": p50(&out["rag_search"]["warm_scope"]),
        }),
    );
    drop((ws, matrix, ids));

    // The same number of chunks over several collections of one user,
    // searched without naming them.
    let n = args.spread;
    let each = args.rag_chunks / n;
    eprintln!("bench_workspace: RAG: {n} collections × {each} chunks, searched at once");
    let ws = Workspace::new(&repos, WorkspaceConfig::default());
    let owner = new_user(db, "rag-spread")?;
    let who = actor(&owner);
    let reader = Reader::user(owner.clone());
    let mut parts = Vec::with_capacity(n);
    for c in 0..n {
        let (id, m) = fill_collection(&ws, db, &who, &format!("part {c}"), each, &mut rng)?;
        let ids = stored_ids(db, &reader, &id, &m)?;
        parts.push((m, ids));
    }
    let q = rng.unit();
    let (first, _, _) = timed_search(&ws, &who, None, &q)?;
    let mut cold = Vec::new();
    for _ in 0..args.cold.min(5) {
        let fresh = Workspace::new(&repos, WorkspaceConfig::default());
        let q = rng.unit();
        cold.push(timed_search(&fresh, &who, None, &q)?.0);
    }
    let (mut service, mut raw) = (Vec::new(), Vec::new());
    for i in 0..args.queries {
        let q = rng.unit();
        let bare = |raw: &mut Vec<Duration>| {
            let t = Instant::now();
            let mut best: Vec<(i64, f32)> = Vec::new();
            for (m, ids) in &parts {
                for (row, score) in offgrid_rag::search_slice(&q, m, TOP_K, -1.0) {
                    best.push((ids[row], score));
                }
            }
            best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            best.truncate(TOP_K);
            raw.push(t.elapsed());
            best
        };
        let early = (i % 2 == 1).then(|| bare(&mut raw));
        let (total, _, got) = timed_search(&ws, &who, None, &q)?;
        service.push(total);
        let best = match early {
            Some(best) => best,
            None => bare(&mut raw),
        };
        let want: Vec<i64> = best.iter().map(|(id, _)| *id).collect();
        if got != want {
            return Err(format!(
                "spread: service hits {got:?}, bare search {want:?}"
            ));
        }
    }
    let service = spread_of(service);
    let raw = spread_of(raw);
    let ratio = p50(&service) / p50(&raw).max(1e-9);
    out.insert(
        "rag_spread".into(),
        json!({
            "collections": n,
            "chunks_each": each,
            "first_search_ms": ms(first),
            "cold_fresh_service": spread_of(cold),
            "warm": service,
            "raw_search_slice": raw,
            "warm_raw_p50_ratio": ratio,
        }),
    );
    Ok(())
}

/// The models directory, as the server's tests find it.
fn models_dir() -> Option<PathBuf> {
    std::env::var_os("OFFGRID_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("OFFGRID_HOME").map(|h| PathBuf::from(h).join("models")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".offgrid-llm/models")))
}

/// The indexer's model: the embedder itself, counting the time spent in
/// it.
struct MiniLm {
    embedder: Arc<Embedder>,
    nanos: AtomicU64,
}

impl EmbeddingBackend for MiniLm {
    fn counter(&self) -> Result<Box<dyn TokenCounter + Send>, String> {
        Ok(Box::new(TokenizerCounter::new(
            self.embedder.tokenizer().clone(),
        )))
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let t = Instant::now();
        let out = self.embedder.embed(texts).map(|e| e.vectors).map_err(err);
        let spent = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

/// About `bytes` of varied English prose, the same every run: paragraphs
/// of a few sentences built from word lists.
fn prose(bytes: usize) -> String {
    const SUBJECTS: &[&str] = &[
        "The old engineer",
        "A small village by the river",
        "The night shift",
        "Our field team",
        "The weather station on the ridge",
        "A travelling librarian",
        "The cooperative's treasurer",
        "The northern orchard",
        "Every apprentice",
        "The harbour master",
        "A retired schoolteacher",
        "The solar array",
        "The mountain clinic",
        "A flock of migrating geese",
        "The printing workshop",
        "The grain mill",
    ];
    const VERBS: &[&str] = &[
        "recorded",
        "repaired",
        "questioned",
        "measured",
        "described",
        "carried",
        "rebuilt",
        "studied",
        "painted",
        "forgot",
        "argued about",
        "delivered",
        "counted",
        "photographed",
        "buried",
        "celebrated",
    ];
    const OBJECTS: &[&str] = &[
        "the broken water pump",
        "three crates of seed potatoes",
        "the rainfall of the last decade",
        "a letter nobody had opened",
        "the wooden bridge over the canal",
        "every lamp in the square",
        "the accounts of the winter market",
        "a map drawn by hand",
        "the bells of the chapel",
        "the first frost of the year",
        "a recipe for plum preserves",
        "the batteries of the radio mast",
        "the path through the marsh",
        "an argument about fishing rights",
        "the children's reading list",
        "the tide tables for spring",
    ];
    const TAILS: &[&str] = &[
        "before the sun came up",
        "while the rain kept falling",
        "because nobody else would",
        "with more patience than anyone expected",
        "after the council meeting ran late",
        "although the ledger said otherwise",
        "as the ferry left the pier",
        "without asking for help",
        "in the middle of the harvest",
        "once the snow had melted",
        "so that the next season would be easier",
        "under the watchful eye of the mayor",
    ];
    const OPENERS: &[&str] = &[
        "",
        "",
        "Later, ",
        "In the spring, ",
        "For a while, ",
        "Surprisingly, ",
        "By the end of the week, ",
        "Some say that ",
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut pick = |list: &[&'static str]| list[rng.below(list.len())];
    let mut text = String::with_capacity(bytes + 512);
    let mut paragraph = 0;
    while text.len() < bytes {
        if paragraph % 12 == 0 {
            text.push_str(&format!("Chapter {}\n\n", paragraph / 12 + 1));
        }
        let sentences = 3 + (paragraph * 7) % 5;
        for s in 0..sentences {
            let opener = pick(OPENERS);
            let subject = pick(SUBJECTS);
            let subject = if opener.is_empty() || opener.ends_with("that ") {
                subject.to_owned()
            } else {
                let mut lower = subject.to_owned();
                lower[..1].make_ascii_lowercase();
                lower
            };
            text.push_str(&format!(
                "{opener}{subject} {} {} {}.",
                pick(VERBS),
                pick(OBJECTS),
                pick(TAILS)
            ));
            text.push(if s + 1 == sentences { '\n' } else { ' ' });
        }
        text.push('\n');
        paragraph += 1;
    }
    text
}

/// Indexing a document with the real embedding model, beside the model
/// alone on the same chunks.
fn ingest(db: &Database, args: &Args) -> Result<Value, String> {
    let Some(path) = models_dir().map(|d| d.join("all-minilm-l6-v2")) else {
        return Ok(json!({ "skipped": "no models directory (HOME is not set)" }));
    };
    if !path.join("model.safetensors").is_file() {
        eprintln!(
            "bench_workspace: ingest skipped: no embedding model in {} (cargo xtask models)",
            path.display()
        );
        return Ok(json!({ "skipped": format!("no embedding model in {}", path.display()) }));
    }
    let embedder = Arc::new(Embedder::open(&path).map_err(err)?);
    let text = prose(args.ingest_kib * 1024);
    eprintln!(
        "bench_workspace: ingest: {} bytes through the indexer with all-minilm-l6-v2",
        text.len()
    );

    // The chunks the indexer will make, and what making them costs.
    let config = IndexerConfig::default();
    let t = Instant::now();
    let extracted = offgrid_rag::extract_document(
        text.as_bytes(),
        "field-notes.txt",
        Some("text/plain"),
        &ExtractLimits::default(),
    )
    .map_err(err)?;
    let counter = TokenizerCounter::new(embedder.tokenizer().clone());
    let pieces = offgrid_rag::chunk(&extracted.text, &counter, &config.chunks);
    let chunking = t.elapsed();
    let tokens: usize = pieces.iter().map(|c| c.tokens).sum();
    let texts: Vec<&str> = pieces.iter().map(|c| c.text.as_str()).collect();

    // The service: upload, then poll until ready.
    let repos = db.repositories();
    let ws = Workspace::new(&repos, WorkspaceConfig::default());
    let owner = new_user(db, "rag-ingest")?;
    let who = actor(&owner);
    let id = ws
        .create_collection(&who, "ingest", None)
        .map_err(err)?
        .collection
        .id;
    let backend = Arc::new(MiniLm {
        embedder: embedder.clone(),
        nanos: AtomicU64::new(0),
    });
    ws.start_indexer(backend.clone(), config).map_err(err)?;
    // One upload through the indexer until it is ready: its wall time.
    let through_indexer = |round: usize| -> Result<f64, String> {
        let t = Instant::now();
        let doc = ws
            .upload_document(
                &who,
                &id,
                &format!("field-notes-{round}.txt"),
                Some("text/plain"),
                text.clone().into_bytes(),
            )
            .map_err(err)?;
        let doc = loop {
            let d = ws.document(&who, &id, &doc.id).map_err(err)?;
            match d.status {
                DocumentStatus::Indexing if t.elapsed() < Duration::from_secs(3600) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                DocumentStatus::Ready => break d,
                _ => return Err(format!("the document was not indexed: {:?}", d.error)),
            }
        };
        let wall = t.elapsed().as_secs_f64();
        if usize::try_from(doc.chunks).ok() != Some(pieces.len()) {
            return Err(format!(
                "the indexer made {} chunks, chunking here {}",
                doc.chunks,
                pieces.len()
            ));
        }
        Ok(wall)
    };
    // The peer: the model alone on the same texts, in the indexer's
    // batches, on a thread of its own as the indexer's work is.
    let alone = || -> Result<(f64, usize), String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Instant::now();
                let mut tokens = 0;
                for batch in texts.chunks(EMBED_BATCH) {
                    tokens += embedder.embed(batch).map_err(err)?.tokens;
                }
                Ok((t.elapsed().as_secs_f64(), tokens))
            })
            .join()
            .map_err(|_| "the peer's thread panicked".to_owned())?
        })
    };
    // Rounds in the order peer, indexer, indexer, peer, … so that a drift
    // in the machine's load hits both sides alike.
    let (mut walls, mut raws, mut raw_tokens) = (Vec::new(), Vec::new(), 0);
    for round in 0..args.ingest_rounds {
        eprintln!("bench_workspace: ingest round {}", round + 1);
        if round % 2 == 0 {
            let (s, n) = alone()?;
            raws.push(s);
            raw_tokens = n;
            walls.push(through_indexer(round)?);
        } else {
            walls.push(through_indexer(round)?);
            let (s, n) = alone()?;
            raws.push(s);
            raw_tokens = n;
        }
    }
    let chunks = pieces.len();
    let rounds = walls.len() as f64;
    let wall = walls.iter().sum::<f64>() / rounds;
    let raw = raws.iter().sum::<f64>() / rounds;
    let in_model =
        Duration::from_nanos(backend.nanos.load(Ordering::Relaxed)).as_secs_f64() / rounds;

    // A search query's embedding, for the end-to-end picture.
    let mut query = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        embedder
            .embed(&["how did the harbour master handle the tide tables in spring?"])
            .map_err(err)?;
        query.push(t.elapsed());
    }

    let per_s = |n: usize, s: f64| n as f64 / s.max(1e-9);
    Ok(json!({
        "model": "all-minilm-l6-v2",
        "bytes": text.len(),
        "chunks": chunks,
        "tokens": tokens,
        "batch": config.batch,
        "rounds": args.ingest_rounds,
        "indexer": {
            "wall_s": wall,
            "round_wall_s": walls,
            "chunks_per_s": per_s(chunks, wall),
            "tokens_per_s": per_s(tokens, wall),
            "in_model_s": in_model,
        },
        "extract_and_chunk_s": chunking.as_secs_f64(),
        "raw_embedder": {
            "wall_s": raw,
            "round_wall_s": raws,
            "chunks_per_s": per_s(chunks, raw),
            "tokens_per_s": per_s(raw_tokens, raw),
            "tokens": raw_tokens,
        },
        "indexer_raw_ratio": raw / wall.max(1e-9),
        "query_embedding": spread_of(query),
    }))
}
