//! What every handler can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use offgrid_auth::{AuthService, SetupCode};
use offgrid_config::Settings;

use offgrid_inference::Models;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Accounts, credentials, audit.
    pub auth: Arc<AuthService>,
    /// Loaded models and the inference engine.
    pub models: Arc<Models>,
    /// Where token usage is recorded and summed.
    pub usage: Arc<dyn offgrid_domain::repo::UsageRepository>,
    /// Chat sessions and shares.
    pub workspace: offgrid_workspace::Workspace,
    /// Benchmark runs (`/v1/benchmark`).
    pub benchmarks: Arc<dyn offgrid_domain::repo::BenchmarkRepository>,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Document uploads whose bodies are being read.
    pub(crate) uploads_reading: Arc<std::sync::atomic::AtomicUsize>,
    /// Set once an admin is known to exist. Only ever goes from false to
    /// true: the last active admin cannot be removed, so once true it stays
    /// true and `/v1/system/config` need not ask the database again.
    admin_exists: Arc<AtomicBool>,
    /// The one-time setup code for remote first-run setup, while setup is
    /// still open. Only in memory; forgotten once an admin exists.
    setup_code: Arc<Mutex<Option<SetupCode>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .field("auth", &self.auth)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over the given settings, services and repositories.
    pub fn new(
        settings: Settings,
        auth: Arc<AuthService>,
        models: Arc<Models>,
        usage: Arc<dyn offgrid_domain::repo::UsageRepository>,
        benchmarks: Arc<dyn offgrid_domain::repo::BenchmarkRepository>,
        workspace: offgrid_workspace::Workspace,
    ) -> Self {
        let backend = crate::routes::rag::ModelsBackend {
            models: models.clone(),
            model: settings.embedding_model.clone(),
        };
        let mut indexing = offgrid_workspace::IndexerConfig::default();
        let max_upload = usize::try_from(settings.rag_max_upload_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20);
        indexing.limits.max_bytes = max_upload;
        indexing.limits.max_chars = max_upload;
        indexing.max_queued_bytes = indexing.max_queued_bytes.max(max_upload.saturating_mul(2));
        if let Err(e) = workspace.start_indexer(Arc::new(backend), indexing) {
            tracing::error!(error = %e, "RAG indexing is not available");
        }
        let metrics = Arc::new(crate::metrics::Metrics::new(settings.metrics_per_user));
        let loads = metrics.clone();
        models.observe_loads(Box::new(move |id, took| loads.model_load(id, took)));
        AppState {
            settings: Arc::new(settings),
            auth,
            models,
            usage,
            benchmarks,
            workspace,
            metrics,
            uploads_reading: Arc::default(),
            admin_exists: Arc::new(AtomicBool::new(false)),
            setup_code: Arc::new(Mutex::new(None)),
        }
    }

    /// The same state holding `code` as the one-time setup code.
    pub fn with_setup_code(self, code: Option<SetupCode>) -> Self {
        AppState {
            setup_code: Arc::new(Mutex::new(code)),
            ..self
        }
    }

    /// The setup code, while setup is open.
    pub(crate) fn setup_code(&self) -> Option<SetupCode> {
        self.setup_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether an admin is known to exist (without a query).
    pub(crate) fn admin_known(&self) -> bool {
        self.admin_exists.load(Ordering::Acquire)
    }

    /// Records that an admin exists; the setup code is of no more use.
    pub(crate) fn mark_admin_exists(&self) {
        self.admin_exists.store(true, Ordering::Release);
        self.setup_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }
}
