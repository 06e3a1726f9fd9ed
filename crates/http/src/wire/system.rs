//! Bodies of the system routes: health and the server's mode and features.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` whenever the server answers.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// Optional features and whether this server has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Features {
    /// Accounts and roles (multi-user mode).
    pub users: bool,
    /// The metrics pages.
    pub metrics: bool,
    /// Tool-using agents.
    pub agent: bool,
    /// LoRA adapters.
    pub lora: bool,
    /// Users, not only administrators, may run benchmarks
    /// (`benchmark_users`).
    #[serde(default)]
    pub benchmark_users: bool,
}

/// `GET /v1/system/config`: what clients and the web UI adapt to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemConfig {
    /// Accounts, roles and API keys.
    pub multi_user_mode: bool,
    /// Whether every request needs a credential.
    pub require_auth: bool,
    /// Whether callers without a credential act as guests.
    pub guest_access: bool,
    /// Optional features.
    pub features: Features,
    /// The server's version.
    pub version: String,
    /// Multi-user mode and no administrator yet.
    pub setup_required: bool,
    /// The chat model a chat that names none uses (`default_model`).
    pub default_model: String,
}
