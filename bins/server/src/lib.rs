//! Wiring for the `offgrid` server: settings in, a running HTTP server out.
//! The binary and the integration tests both start the server through
//! [`prepare`], so tests exercise the real wiring.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use offgrid_auth::{Actor, AuthConfig, AuthService, SetupCode};
use offgrid_cli::Services;
use offgrid_config::Settings;
use offgrid_http::AppState;

/// The auth settings derived from the user's settings.
pub use offgrid_cli::auth_config;

/// Whether these settings serve single-user mode (no login, every
/// permission) on an address beyond loopback.
pub fn single_user_beyond_loopback(settings: &Settings) -> bool {
    !settings.multi_user_mode && !offgrid_http::is_loopback_name(&settings.host)
}

/// Refuses to expose single-user mode (no login, every permission) on a
/// non-loopback address unless `allow_remote_single_user` says so. The
/// error is one line for the operator.
pub fn check_exposure(settings: &Settings) -> Result<(), String> {
    if !single_user_beyond_loopback(settings) || settings.allow_remote_single_user {
        return Ok(());
    }
    Err(format!(
        "refusing to serve single-user mode (no login, full access) on non-loopback address {}: \
         enable multi-user mode (--multi-user), or accept that anyone who reaches the port has \
         full access with --allow-remote-single-user (OFFGRID_ALLOW_REMOTE_SINGLE_USER=true)",
        settings.host
    ))
}

/// Everything `serve` needs, built before the async runtime starts: the
/// database is migrated, the dummy bcrypt hash computed and the port bound,
/// so no blocking work happens on an executor thread.
pub struct Prepared {
    state: AppState,
    listener: TcpListener,
    /// The bound address (useful with port 0).
    pub addr: std::net::SocketAddr,
    setup_code: Option<SetupCode>,
}

/// Opens storage, builds the auth service and binds
/// `settings.host:settings.port`. Blocking; call before entering the runtime.
pub fn prepare(settings: Settings, auth_config: AuthConfig) -> anyhow::Result<Prepared> {
    check_exposure(&settings).map_err(anyhow::Error::msg)?;
    let Services {
        db,
        auth,
        workspace,
    } = Services::open_with(&settings, auth_config)?;
    let usage = db.repositories().usage;
    let benchmarks = db.repositories().benchmarks;
    // Until the first admin exists, remote setup needs this code; it lives
    // only in memory and is shown once at start-up.
    let setup_code = (settings.multi_user_mode && auth.setup_required()?).then(SetupCode::generate);
    let models = offgrid_inference::Models::open(
        &settings.home.join("models"),
        offgrid_inference::ModelsConfig {
            engine: offgrid_inference::EngineConfig {
                kv_cache_bytes: match settings.kv_cache_mb {
                    0 => offgrid_inference::engine::default_kv_cache_bytes(),
                    mb => (mb as usize).saturating_mul(1 << 20),
                },
                max_active: settings.num_parallel as usize,
                ..offgrid_inference::EngineConfig::default()
            },
            default_keep_alive: settings.keep_alive,
            max_loaded: settings.max_loaded_models as usize,
            clean_leftovers: true,
            max_context: (settings.context_length > 0).then_some(settings.context_length as usize),
        },
    )?;
    if settings.model_import_dir.is_none() {
        // The default import folder lives in the private home; a
        // configured one is the operator's to set up.
        offgrid_storage::make_private_dir(&settings.model_import_dir())?;
    }
    let listener = TcpListener::bind((settings.host.as_str(), settings.port))
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    let addr = listener.local_addr()?;
    Ok(Prepared {
        state: AppState::new(
            settings,
            Arc::new(auth),
            models,
            usage,
            benchmarks,
            workspace,
        )
        .with_setup_code(setup_code.clone()),
        listener,
        addr,
        setup_code,
    })
}

impl Prepared {
    /// The one-time setup code (grouped for reading), when the server
    /// started before any admin existed in multi-user mode.
    pub fn setup_code(&self) -> Option<String> {
        self.setup_code.as_ref().map(SetupCode::reveal)
    }

    /// Builds the HTTP server with `workers` threads and starts the audit
    /// retention and auth housekeeping tasks. Call inside an actix
    /// runtime, then await the returned server.
    pub fn run(self, workers: usize) -> anyhow::Result<actix_web::dev::Server> {
        let retention_days = self.state.settings.audit_retention_days;
        actix_web::rt::spawn(audit_retention(self.state.auth.clone(), retention_days));
        actix_web::rt::spawn(auth_housekeeping(self.state.auth.clone()));
        Ok(offgrid_http::serve(self.state, self.listener, workers)?)
    }
}

/// Every minute, on the blocking pool: throttled refusals counted in memory
/// go to the audit log and idle throttle counters are pruned (never per
/// login attempt).
async fn auth_housekeeping(auth: Arc<AuthService>) {
    let every = std::time::Duration::from_secs(
        offgrid_auth::service::HOUSEKEEPING_INTERVAL_SECS.unsigned_abs(),
    );
    loop {
        actix_web::rt::time::sleep(every).await;
        let service = auth.clone();
        if let Err(e) = actix_web::rt::task::spawn_blocking(move || service.housekeeping()).await {
            tracing::error!(error = %e, "auth housekeeping task failed");
        }
    }
}

/// How often the audit retention setting is applied.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes audit entries older than `days` (0: keep all) now and every
/// hour, on the blocking pool, until the runtime stops.
async fn audit_retention(auth: Arc<AuthService>, days: u32) {
    if days == 0 {
        return;
    }
    loop {
        let service = auth.clone();
        let actor = Actor {
            name: Some("offgrid (audit retention)".to_owned()),
            ..Actor::default()
        };
        match actix_web::rt::task::spawn_blocking(move || service.prune_audit(days, &actor)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(deleted = n, days, "pruned the audit log"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot prune the audit log"),
            Err(e) => tracing::error!(error = %e, "audit retention task failed"),
        }
        actix_web::rt::time::sleep(RETENTION_EVERY).await;
    }
}
