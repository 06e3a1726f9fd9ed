//! Wiring for the `offgrid` server: settings in, a running HTTP server out.
//! The binary and the integration tests both start the server through
//! [`start`], so tests exercise the real wiring.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use offgrid_auth::{AuthConfig, AuthService, ServerSecret};
use offgrid_config::Settings;
use offgrid_http::AppState;
use offgrid_storage::Database;

/// Opens (and migrates) the database and builds the auth service.
pub fn open(
    settings: &Settings,
    auth_config: AuthConfig,
) -> anyhow::Result<(Database, AuthService)> {
    let db = Database::open(&settings.database_path())?;
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied database migrations");
    }
    let secret = ServerSecret::load_or_create(&settings.home.join("secret.key"))?;
    let auth = AuthService::new(db.repositories(), &secret, auth_config)?;
    Ok((db, auth))
}

/// The auth settings derived from the user's settings.
pub fn auth_config(settings: &Settings) -> AuthConfig {
    AuthConfig::from_settings(
        settings.bcrypt_cost,
        settings.session_ttl_hours,
        settings.remember_me_days,
    )
}

/// Everything `serve` needs, built before the async runtime starts: the
/// database is migrated, the dummy bcrypt hash computed and the port bound,
/// so no blocking work happens on an executor thread.
pub struct Prepared {
    state: AppState,
    listener: TcpListener,
    /// The bound address (useful with port 0).
    pub addr: std::net::SocketAddr,
}

/// Opens storage, builds the auth service and binds
/// `settings.host:settings.port`. Blocking; call before entering the runtime.
pub fn prepare(settings: Settings, auth_config: AuthConfig) -> anyhow::Result<Prepared> {
    let (_db, auth) = open(&settings, auth_config)?;
    let models = offgrid_http::Models::open(
        &settings.home.join("models"),
        offgrid_inference::EngineConfig::default(),
        settings.keep_alive,
        settings.max_loaded_models as usize,
    )?;
    let listener = TcpListener::bind((settings.host.as_str(), settings.port))
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    let addr = listener.local_addr()?;
    Ok(Prepared {
        state: AppState::new(settings, Arc::new(auth), models),
        listener,
        addr,
    })
}

impl Prepared {
    /// Builds the HTTP server with `workers` threads. Call inside an actix
    /// runtime, then await the returned server.
    pub fn run(self, workers: usize) -> anyhow::Result<actix_web::dev::Server> {
        Ok(offgrid_http::serve(self.state, self.listener, workers)?)
    }
}
