//! The server's models: the registry of what is installed, the models
//! currently in memory, and the engine that runs them.
//!
//! Models load on first use and stay loaded for a keep-alive after their
//! last request (the `keep_alive` setting, or a request's own `keep_alive`,
//! as in Ollama). A reaper thread unloads a model once it is idle (no
//! request holds it) and its keep-alive has run out. Loading, importing
//! and removing block: call them from the blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use offgrid_config::KeepAlive;
use offgrid_inference::registry::BrokenModel;
use offgrid_inference::{Admitted, PerKeyLimit};
use offgrid_inference::{
    ChatModel, Embedder, Engine, EngineConfig, InferenceError, ModelEntry, ModelKind, ModelRegistry,
};

/// How often the reaper looks for idle models.
const REAP_EVERY: Duration = Duration::from_millis(250);
/// Every this many reaper ticks, the models directory is checked for
/// changes made by other processes.
const RESCAN_EVERY_TICKS: u32 = 8;

/// A model in memory.
#[derive(Clone)]
enum Instance {
    Chat(Arc<ChatModel>),
    Embedding(Arc<Embedder>),
}

impl Instance {
    /// Whether a request (or the engine) holds a reference besides ours.
    fn in_use(&self) -> bool {
        match self {
            Instance::Chat(m) => Arc::strong_count(m) > 1,
            Instance::Embedding(m) => Arc::strong_count(m) > 1,
        }
    }
}

struct Resident {
    instance: Instance,
    keep_alive: KeepAlive,
    /// Last time a request asked for it or the reaper saw it in use.
    last_used: Instant,
}

impl Resident {
    fn expires_in(&self, now: Instant) -> Option<Duration> {
        match self.keep_alive {
            KeepAlive::Forever => None,
            // A deadline past what `Instant` can hold is never reached.
            KeepAlive::For(d) => self
                .last_used
                .checked_add(d)
                .map(|deadline| deadline.saturating_duration_since(now)),
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Installed models by id (the registry, as last scanned).
    installed: BTreeMap<String, ModelEntry>,
    /// Folders that are not usable models.
    broken: Vec<BrokenModel>,
    /// Models in memory by id.
    resident: HashMap<String, Resident>,
    /// The models directory's modification time at the last scan.
    stamp: Option<std::time::SystemTime>,
}

/// A model as listed: its registry entry and whether it is in memory.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    /// What is installed.
    pub entry: ModelEntry,
    /// `Some` while loaded: time left before it unloads (`None` inside:
    /// never).
    pub loaded: Option<Option<Duration>>,
}

/// Why a model could not be used, imported or removed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No installed model has this id.
    #[error("The model `{0}` does not exist")]
    NotFound(String),
    /// The model exists but is the other kind.
    #[error("The model `{id}` is not {wanted} model")]
    WrongKind {
        /// The model.
        id: String,
        /// `a chat` or `an embedding`.
        wanted: &'static str,
    },
    /// Registry or model loading failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// Bounds embedding work, which runs on the shared blocking pool: at most
/// `slots` requests embed at once, at most `max_admitted` are running or
/// waiting, and one fairness key (user or guest address) has at most
/// `per_key` of them.
pub struct EmbeddingGate {
    slots: Arc<tokio::sync::Semaphore>,
    per_key: PerKeyLimit,
    admitted: Arc<std::sync::atomic::AtomicUsize>,
    max_admitted: usize,
}

/// Why an embedding request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingRefusal {
    /// This caller already has its share in flight.
    CallerBusy,
    /// Too many embedding requests in flight overall.
    ServerBusy,
}

/// An admitted embedding request's place; given back when dropped.
#[derive(Debug)]
pub struct EmbeddingAdmission {
    _key: Admitted,
    admitted: Arc<std::sync::atomic::AtomicUsize>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Drop for EmbeddingAdmission {
    fn drop(&mut self) {
        self.admitted
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl EmbeddingAdmission {
    /// Waits (asynchronously) for a free slot; the permit ends the slot.
    pub async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }
}

impl EmbeddingGate {
    /// A gate with `slots` concurrent requests, `max_admitted` in flight
    /// and `per_key` per caller.
    pub fn new(slots: usize, max_admitted: usize, per_key: usize) -> Self {
        EmbeddingGate {
            slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
            per_key: PerKeyLimit::new(per_key),
            admitted: Arc::default(),
            max_admitted: max_admitted.max(1),
        }
    }

    /// Admits one request of `key`, or says why not.
    pub fn admit(&self, key: &str) -> Result<EmbeddingAdmission, EmbeddingRefusal> {
        let per_key = self
            .per_key
            .try_admit(key)
            .ok_or(EmbeddingRefusal::CallerBusy)?;
        let before = self
            .admitted
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let admission = EmbeddingAdmission {
            _key: per_key,
            admitted: self.admitted.clone(),
            slots: self.slots.clone(),
        };
        if before >= self.max_admitted {
            return Err(EmbeddingRefusal::ServerBusy);
        }
        Ok(admission)
    }

    /// Callers with embedding requests in flight.
    pub fn callers_in_flight(&self) -> usize {
        self.per_key.keys()
    }
}

/// What all anonymous guests together may have in flight, so guests from
/// many addresses cannot fill the shared queues.
#[derive(Debug)]
pub struct GuestShare {
    /// Generation requests (key `all`): half the engine's queue.
    pub generation: PerKeyLimit,
    /// Embedding requests (key `all`): half the embedding places.
    pub embeddings: PerKeyLimit,
}

/// Installed models, loaded models and the engine.
pub struct Models {
    registry: ModelRegistry,
    /// The scheduler for chat and completion requests.
    pub engine: Engine,
    /// Bounds on embedding requests.
    pub embeddings: EmbeddingGate,
    /// Bounds on all guests together.
    pub guests: GuestShare,
    default_keep_alive: KeepAlive,
    max_loaded: usize,
    inner: Mutex<Inner>,
    /// Held while a model loads, so two requests never load it twice.
    loading: Mutex<()>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("dir", &self.registry.dir())
            .finish_non_exhaustive()
    }
}

impl Models {
    /// Opens the registry under `dir` (cleaning up after a crashed import),
    /// scans it and starts the engine and the reaper. Nothing is loaded
    /// yet. Blocking.
    pub fn open(
        dir: &Path,
        engine: EngineConfig,
        default_keep_alive: KeepAlive,
        max_loaded: usize,
    ) -> Result<Arc<Self>, InferenceError> {
        let registry = ModelRegistry::new(dir);
        registry.clean_leftovers();
        let models = Arc::new(Models {
            registry,
            engine: Engine::start(engine)?,
            embeddings: EmbeddingGate::new(2, 32, 2),
            guests: GuestShare {
                generation: PerKeyLimit::new(engine.max_queued / 2),
                embeddings: PerKeyLimit::new(16),
            },
            default_keep_alive,
            max_loaded: max_loaded.max(1),
            inner: Mutex::new(Inner::default()),
            loading: Mutex::new(()),
        });
        models.rescan();
        let weak = Arc::downgrade(&models);
        std::thread::Builder::new()
            .name("offgrid-reaper".into())
            .spawn(move || reap(&weak))
            .map_err(|e| InferenceError::Candle(format!("cannot start reaper thread: {e}")))?;
        Ok(models)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Re-reads the models directory. Blocking (hashes new folders).
    pub fn rescan(&self) {
        let stamp = dir_stamp(self.registry.dir());
        let scan = self.registry.scan();
        let mut inner = self.lock();
        for b in &scan.broken {
            if !inner.broken.contains(b) {
                tracing::warn!(model = %b.id, reason = %b.reason, "skipping model folder");
            }
        }
        for m in &scan.models {
            if !inner.installed.contains_key(&m.id) {
                tracing::info!(model = %m.id, kind = m.kind.as_str(), "model available");
            }
        }
        if scan.models.is_empty() && (stamp != inner.stamp || inner.stamp.is_none()) {
            tracing::warn!(
                dir = %self.registry.dir().display(),
                "no models installed: run `cargo xtask models` to install the default models"
            );
        }
        inner.stamp = stamp;
        inner.installed = scan.models.into_iter().map(|m| (m.id.clone(), m)).collect();
        inner.broken = scan.broken;
        let Inner {
            installed,
            resident,
            ..
        } = &mut *inner;
        resident.retain(|id, _| installed.contains_key(id));
    }

    /// Rescans when the models directory changed (a model added or removed
    /// by `offgrid models import|remove` or by hand while serving).
    fn rescan_if_changed(&self) {
        let stamp = dir_stamp(self.registry.dir());
        if stamp != self.lock().stamp {
            self.rescan();
        }
    }

    /// Every installed model, sorted by id, with its load state.
    pub fn list(&self) -> Vec<ModelStatus> {
        let inner = self.lock();
        let now = Instant::now();
        inner
            .installed
            .values()
            .map(|entry| ModelStatus {
                entry: entry.clone(),
                loaded: inner.resident.get(&entry.id).map(|r| r.expires_in(now)),
            })
            .collect()
    }

    /// One installed model.
    pub fn status(&self, id: &str) -> Option<ModelStatus> {
        let inner = self.lock();
        let entry = inner.installed.get(id)?.clone();
        let loaded = inner.resident.get(id).map(|r| r.expires_in(Instant::now()));
        Some(ModelStatus { entry, loaded })
    }

    /// Whether no model at all is installed.
    pub fn is_empty(&self) -> bool {
        self.lock().installed.is_empty()
    }

    /// The chat model `id`, loading it if needed; it then stays loaded for
    /// `keep_alive` (default: the server's setting) after its last use.
    /// Blocking.
    pub fn chat(
        &self,
        id: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Arc<ChatModel>, ModelError> {
        match self.acquire(id, ModelKind::Chat, keep_alive)? {
            Instance::Chat(m) => Ok(m),
            Instance::Embedding(_) => Err(ModelError::WrongKind {
                id: id.to_owned(),
                wanted: "a chat",
            }),
        }
    }

    /// The embedding model `id`, loading it if needed. Blocking.
    pub fn embedder(
        &self,
        id: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Arc<Embedder>, ModelError> {
        match self.acquire(id, ModelKind::Embedding, keep_alive)? {
            Instance::Embedding(m) => Ok(m),
            Instance::Chat(_) => Err(ModelError::WrongKind {
                id: id.to_owned(),
                wanted: "an embedding",
            }),
        }
    }

    fn resident(&self, id: &str, keep_alive: Option<KeepAlive>) -> Option<Instance> {
        let mut inner = self.lock();
        let r = inner.resident.get_mut(id)?;
        r.last_used = Instant::now();
        if let Some(k) = keep_alive {
            r.keep_alive = k;
        }
        Some(r.instance.clone())
    }

    fn acquire(
        &self,
        id: &str,
        kind: ModelKind,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Instance, ModelError> {
        if let Some(i) = self.resident(id, keep_alive) {
            return Ok(i);
        }
        let entry = self
            .lock()
            .installed
            .get(id)
            .cloned()
            .ok_or_else(|| ModelError::NotFound(id.to_owned()))?;
        if entry.kind != kind {
            return Err(ModelError::WrongKind {
                id: id.to_owned(),
                wanted: match kind {
                    ModelKind::Chat => "a chat",
                    ModelKind::Embedding => "an embedding",
                },
            });
        }
        let _loading = self
            .loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another request may have loaded it while we waited.
        if let Some(i) = self.resident(id, keep_alive) {
            return Ok(i);
        }
        self.make_room();
        let started = Instant::now();
        let path = self.registry.weights_path(&entry);
        let instance = match kind {
            ModelKind::Chat => Instance::Chat(Arc::new(ChatModel::load(id, &path)?)),
            ModelKind::Embedding => Instance::Embedding(Arc::new(Embedder::open(&path)?)),
        };
        tracing::info!(model = %id, ms = started.elapsed().as_millis() as u64, "loaded model");
        let mut inner = self.lock();
        if !inner.installed.contains_key(id) {
            // Removed while loading.
            return Err(ModelError::NotFound(id.to_owned()));
        }
        inner.resident.insert(
            id.to_owned(),
            Resident {
                instance: instance.clone(),
                keep_alive: keep_alive.unwrap_or(self.default_keep_alive),
                last_used: Instant::now(),
            },
        );
        Ok(instance)
    }

    /// Before a load: while `max_loaded` models are in memory, unloads the
    /// least recently used one that no request holds. Models in use stay
    /// (the limit is then exceeded until they finish).
    fn make_room(&self) {
        let mut inner = self.lock();
        while inner.resident.len() >= self.max_loaded {
            let victim = inner
                .resident
                .iter()
                .filter(|(_, r)| !r.instance.in_use())
                .min_by_key(|(_, r)| r.last_used)
                .map(|(id, _)| id.clone());
            let Some(id) = victim else {
                tracing::warn!(
                    limit = self.max_loaded,
                    "every loaded model is in use; loading one more than max_loaded_models"
                );
                return;
            };
            inner.resident.remove(&id);
            tracing::info!(model = %id, "unloaded to make room (max_loaded_models)");
        }
    }

    /// Imports a `.gguf` file or an embedding model folder (see
    /// [`ModelRegistry::import`]). Blocking: copies and hashes the file.
    pub fn import(&self, source: &Path, id: Option<&str>) -> Result<ModelEntry, ModelError> {
        let entry = self.registry.import(source, id)?;
        self.lock()
            .installed
            .insert(entry.id.clone(), entry.clone());
        tracing::info!(model = %entry.id, "imported model");
        Ok(entry)
    }

    /// Removes an installed model: it is unloaded (requests already running
    /// on it finish) and its files deleted.
    pub fn remove(&self, id: &str) -> Result<ModelEntry, ModelError> {
        let entry = {
            let mut inner = self.lock();
            let entry = inner
                .installed
                .remove(id)
                .ok_or_else(|| ModelError::NotFound(id.to_owned()))?;
            inner.resident.remove(id);
            entry
        };
        if let Err(e) = self.registry.remove(id) {
            // Still on disk: keep listing it.
            self.lock().installed.insert(id.to_owned(), entry);
            return Err(e.into());
        }
        tracing::info!(model = %id, "removed model");
        Ok(entry)
    }

    /// Unloads every model whose keep-alive has run out and that no request
    /// holds. Returns the ids unloaded.
    fn reap_once(&self) -> Vec<String> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut gone = Vec::new();
        inner.resident.retain(|id, r| {
            if r.instance.in_use() {
                r.last_used = now;
                return true;
            }
            let keep = r.expires_in(now).is_none_or(|left| !left.is_zero());
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        gone
    }
}

/// When a directory last changed (entries added, removed or renamed).
fn dir_stamp(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

/// The reaper: unloads idle models and notices changes to the models
/// directory; runs until the models are dropped. A panic in one round is
/// logged and the next round runs as usual: the reaper never dies silently.
fn reap(models: &Weak<Models>) {
    let mut ticks = 0u32;
    loop {
        std::thread::sleep(REAP_EVERY);
        let Some(models) = models.upgrade() else {
            return;
        };
        ticks = ticks.wrapping_add(1);
        let rescan = ticks.is_multiple_of(RESCAN_EVERY_TICKS);
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for id in models.reap_once() {
                tracing::info!(model = %id, "unloaded idle model");
            }
            if rescan {
                models.rescan_if_changed();
            }
        }));
        if let Err(panic) = round {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "the model reaper panicked; it keeps running");
        }
    }
}
