#![doc = include_str!("../README.md")]

pub mod chat;
pub mod collections;
pub mod error;
pub mod indexer;
pub mod presets;
pub mod quota;
pub mod retrieval;
pub mod sessions;
pub mod shares;

use std::sync::Arc;

use offgrid_domain::audit::NewAuditEvent;
use offgrid_domain::repo::{
    AuditRepository, ChatSessionRepository, CollectionRepository, GrantRepository,
    PresetRepository, QuotaRepository, Repositories, UserRepository,
};
use offgrid_domain::{Principal, Timestamp};

pub use chat::ChatContext;
pub use collections::CollectionView;
pub use error::WorkspaceError;
pub use indexer::{EmbeddingBackend, IndexerConfig};
pub use retrieval::{RagScope, SearchHit};
pub use sessions::{SessionPermission, SessionView, ShareTarget};

/// Settings the workspace follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkspaceConfig {
    /// Whether administrators may read the messages of sessions not shared
    /// with them (titles and counts they always see).
    pub admin_can_read_chats: bool,
    /// Each role's default quota.
    pub quotas: quota::QuotaDefaults,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            admin_can_read_chats: true,
            quotas: quota::QuotaDefaults::default(),
        }
    }
}

/// Who acts, for the policy and the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The caller.
    pub principal: Principal,
    /// Their address, over HTTP.
    pub client_addr: Option<String>,
}

impl Actor {
    /// A caller from `client_addr`.
    pub fn new(principal: Principal, client_addr: Option<String>) -> Self {
        Actor {
            principal,
            client_addr,
        }
    }
}

/// The workspace service. Cheap to clone; every method is blocking.
#[derive(Clone)]
pub struct Workspace {
    users: Arc<dyn UserRepository>,
    chats: Arc<dyn ChatSessionRepository>,
    collections: Arc<dyn CollectionRepository>,
    grants: Arc<dyn GrantRepository>,
    presets: Arc<dyn PresetRepository>,
    quotas: Arc<dyn QuotaRepository>,
    audit: Arc<dyn AuditRepository>,
    config: WorkspaceConfig,
    running: Arc<quota::Running>,
    retrieval: Arc<retrieval::Retrieval>,
    indexer: Arc<indexer::Indexer>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// The service over `repos`.
    pub fn new(repos: &Repositories, config: WorkspaceConfig) -> Self {
        Workspace {
            users: repos.users.clone(),
            chats: repos.chats.clone(),
            collections: repos.collections.clone(),
            grants: repos.grants.clone(),
            presets: repos.presets.clone(),
            quotas: repos.quotas.clone(),
            audit: repos.audit.clone(),
            config,
            running: Arc::default(),
            retrieval: Arc::default(),
            indexer: Arc::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> WorkspaceConfig {
        self.config
    }

    /// Records an event; a failure to record is logged, not returned (the
    /// change itself is done).
    fn record(&self, actor: &Actor, action: &str, target: String, details: serde_json::Value) {
        let user = actor.principal.user_id.clone();
        let name = user
            .as_ref()
            .and_then(|id| self.users.get(id).ok())
            .map(|u| u.username);
        let event = NewAuditEvent {
            at: now(),
            actor_id: user.filter(|id| !id.is_system()),
            actor: name,
            action: action.to_owned(),
            target: Some(target),
            client_addr: actor.client_addr.clone(),
            details: Some(details.to_string()),
        };
        if let Err(e) = self.audit.append(event) {
            tracing::error!(action, error = %e, "cannot write audit log");
        }
    }
}

/// The current time.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
}
