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

/// A started server and where it listens.
pub struct Running {
    /// The server future; await it to run until shutdown.
    pub server: actix_web::dev::Server,
    /// The bound address (useful with port 0).
    pub addr: std::net::SocketAddr,
}

/// Binds `settings.host:settings.port` and builds the server. Call inside an
/// actix/tokio runtime.
pub fn start(
    settings: Settings,
    auth_config: AuthConfig,
    workers: usize,
) -> anyhow::Result<Running> {
    let (_db, auth) = open(&settings, auth_config)?;
    let bind = (settings.host.as_str(), settings.port);
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(settings, Arc::new(auth));
    let server = offgrid_http::serve(state, listener, workers)?;
    Ok(Running { server, addr })
}
