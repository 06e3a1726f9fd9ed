//! A model's whole life on the server: the registry of what is installed,
//! the models in memory, the engine that runs them, and the one small API
//! the HTTP layer and the in-process `offgrid run|chat` both use to serve
//! requests ([`serve`]: "generate for these messages or this text",
//! "embed these inputs").
//!
//! Models load on first use and stay loaded for a keep-alive after their
//! last request (the `keep_alive` setting, or a request's own `keep_alive`,
//! as in Ollama). A reaper thread unloads a model once it is idle (no
//! request holds it) and its keep-alive has run out. Loading, importing,
//! removing, generating and embedding block: call them from a blocking
//! pool, never from an async executor's threads.

pub mod gate;
mod residency;
pub mod serve;

pub use gate::{EmbeddingAdmission, EmbeddingGate, EmbeddingRefusal, GuestShare, Slot, SlotWaiter};
pub use residency::LoadObserver;
pub use serve::{EmbedRequest, GenerateRequest, Generation, Prompt, Requester, Ticket};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use offgrid_config::KeepAlive;

use crate::limits::PerKeyLimit;
use crate::registry::BrokenModel;
use crate::{
    ChatModel, Embedder, Engine, EngineConfig, EngineError, InferenceError, ModelEntry, ModelKind,
    ModelRegistry,
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

/// Appended to "model not found" when the server has no models at all.
const NO_MODELS_HINT: &str =
    " (no models are installed: run `cargo xtask models` to install the default models)";

fn hint(none_installed: bool) -> &'static str {
    if none_installed { NO_MODELS_HINT } else { "" }
}

/// Why a model could not be used, imported or removed, or a request could
/// not be served. Each variant is one answer a client can be given; the
/// HTTP layer maps them to statuses and codes.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No installed model has this id.
    #[error("The model `{id}` does not exist{}", hint(*none_installed))]
    NotFound {
        /// The id asked for.
        id: String,
        /// No model at all is installed (the message then says how to
        /// install the defaults).
        none_installed: bool,
    },
    /// The model exists but is the other kind.
    #[error("The model `{id}` is not {wanted} model")]
    WrongKind {
        /// The model.
        id: String,
        /// `a chat` or `an embedding`.
        wanted: &'static str,
    },
    /// The model's files would not load. The cause holds paths and
    /// candle's message: log it, do not show it to clients.
    #[error("The model could not be loaded; the server log has details")]
    LoadFailed(#[source] InferenceError),
    /// Registry work (import, remove) failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// The engine refused the request (queue full, the caller at their
    /// limit, or stopped).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// All guests together have their share of the queue in flight.
    #[error("too many guest requests in progress; try again shortly")]
    GuestsBusy,
    /// This caller already has its embedding requests in flight.
    #[error("too many embedding requests in progress: wait for one to finish")]
    EmbeddingCallerBusy,
    /// Too many embedding requests are in flight overall.
    #[error("the server is busy with embeddings; try again shortly")]
    EmbeddingBusy,
    /// The chat template or the tokenizer refused the prompt.
    #[error("{0}")]
    InvalidPrompt(String),
    /// The requested output format (a JSON schema) cannot be enforced.
    #[error("cannot be enforced: {0}")]
    InvalidFormat(String),
    /// The prompt has no tokens.
    #[error("prompt: is empty")]
    EmptyPrompt,
    /// The prompt alone fills the context.
    #[error(
        "This model's maximum context length is {context} tokens; the prompt has {prompt} tokens"
    )]
    ContextExceeded {
        /// The model's context length.
        context: usize,
        /// The prompt's tokens.
        prompt: usize,
    },
    /// The prompt and the `max_tokens` asked for do not fit the context.
    #[error(
        "max_tokens ({max}) plus the prompt ({prompt} tokens) exceeds the context length of {context} tokens"
    )]
    MaxTokensExceedContext {
        /// The `max_tokens` asked for.
        max: usize,
        /// The prompt's tokens.
        prompt: usize,
        /// The model's context length.
        context: usize,
    },
    /// Embedding failed inside the model.
    #[error("embedding failed")]
    Embedding(#[source] InferenceError),
    /// The client left before the work was done.
    #[error("stopped: the client left")]
    ClientLeft,
}

impl ModelError {
    fn not_found(id: &str, none_installed: bool) -> Self {
        ModelError::NotFound {
            id: id.to_owned(),
            none_installed,
        }
    }
}

/// How [`Models`] is set up.
#[derive(Debug, Clone, Copy)]
pub struct ModelsConfig {
    /// The engine's scheduling limits.
    pub engine: EngineConfig,
    /// How long a model stays loaded after its last use, unless a request
    /// says otherwise.
    pub default_keep_alive: KeepAlive,
    /// Models in memory at once (at least 1).
    pub max_loaded: usize,
    /// Delete what a crashed import left in the models folder. Only the
    /// server does: another process (`offgrid run` beside a running
    /// `offgrid models import`) would delete an import in progress.
    pub clean_leftovers: bool,
    /// Context served per chat model, if less than the model's own.
    pub max_context: Option<usize>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            engine: EngineConfig::default(),
            default_keep_alive: KeepAlive::For(Duration::from_secs(300)),
            max_loaded: 2,
            clean_leftovers: false,
            max_context: None,
        }
    }
}

/// Installed models, loaded models and the engine.
pub struct Models {
    registry: ModelRegistry,
    /// The scheduler for chat and completion requests.
    engine: Engine,
    /// Bounds on embedding requests.
    embeddings: EmbeddingGate,
    /// Bounds on all guests together.
    guests: GuestShare,
    default_keep_alive: KeepAlive,
    max_loaded: usize,
    max_context: Option<usize>,
    inner: Mutex<Inner>,
    /// Held while a model loads, so two requests never load it twice.
    loading: Mutex<()>,
    /// Told of every load (see [`Models::observe_loads`]).
    load_observer: std::sync::OnceLock<residency::LoadObserver>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("dir", &self.registry.dir())
            .finish_non_exhaustive()
    }
}

impl Models {
    /// Opens the registry under `dir` (cleaning up after a crashed import if
    /// `clean_leftovers`),
    /// scans it and starts the engine and the reaper. Nothing is loaded
    /// yet. Blocking.
    pub fn open(dir: &Path, config: ModelsConfig) -> Result<Arc<Self>, InferenceError> {
        let ModelsConfig {
            engine,
            default_keep_alive,
            max_loaded,
            clean_leftovers,
            max_context,
        } = config;
        let registry = ModelRegistry::new(dir);
        if clean_leftovers {
            registry.clean_leftovers();
        }
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
            max_context,
            inner: Mutex::new(Inner::default()),
            loading: Mutex::new(()),
            load_observer: std::sync::OnceLock::new(),
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

    /// Requests waiting in the engine's queue.
    pub fn queued(&self) -> usize {
        self.engine.queued()
    }

    /// Callers with generation or embedding requests in flight.
    pub fn callers_in_flight(&self) -> usize {
        self.engine.users_in_flight() + self.embeddings.callers_in_flight()
    }

    /// The chat model `id`, loading it if needed; it then stays loaded for
    /// `keep_alive` (default: the server's setting) after its last use.
    /// Blocking.
    pub(crate) fn chat(
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
    pub(crate) fn embedder(
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
        let entry = {
            let inner = self.lock();
            inner
                .installed
                .get(id)
                .cloned()
                .ok_or_else(|| ModelError::not_found(id, inner.installed.is_empty()))?
        };
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
        let loaded = match kind {
            ModelKind::Chat => ChatModel::load(id, &path).map(|m| {
                let m = match self.max_context {
                    Some(max) => m.with_context_limit(max),
                    None => m,
                };
                Instance::Chat(Arc::new(m))
            }),
            ModelKind::Embedding => Embedder::open(&path).map(|m| Instance::Embedding(Arc::new(m))),
        };
        let instance = loaded.map_err(|e| {
            tracing::error!(model = %id, error = %e, detail = ?e, "model load failed");
            ModelError::LoadFailed(e)
        })?;
        tracing::info!(model = %id, ms = started.elapsed().as_millis() as u64, "loaded model");
        if let Some(observe) = self.load_observer.get() {
            observe(id, started.elapsed());
        }
        let mut inner = self.lock();
        if !inner.installed.contains_key(id) {
            // Removed while loading.
            return Err(ModelError::not_found(id, inner.installed.is_empty()));
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
            let none_installed = inner.installed.is_empty();
            let entry = inner
                .installed
                .remove(id)
                .ok_or_else(|| ModelError::not_found(id, none_installed))?;
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
