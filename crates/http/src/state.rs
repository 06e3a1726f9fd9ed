//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use offgrid_auth::AuthService;
use offgrid_config::Settings;

use crate::models::Models;

/// Shared application state (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Accounts, credentials, audit.
    pub auth: Arc<AuthService>,
    /// Loaded models and the inference engine.
    pub models: Arc<Models>,
    /// Set once an admin is known to exist. Only ever goes from false to
    /// true: the last active admin cannot be removed, so once true it stays
    /// true and `/v1/system/config` need not ask the database again.
    admin_exists: Arc<AtomicBool>,
}

impl AppState {
    /// State over the given settings and auth service.
    pub fn new(settings: Settings, auth: Arc<AuthService>, models: Arc<Models>) -> Self {
        AppState {
            settings: Arc::new(settings),
            auth,
            models,
            admin_exists: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether an admin is known to exist (without a query).
    pub(crate) fn admin_known(&self) -> bool {
        self.admin_exists.load(Ordering::Acquire)
    }

    /// Records that an admin exists.
    pub(crate) fn mark_admin_exists(&self) {
        self.admin_exists.store(true, Ordering::Release);
    }
}
