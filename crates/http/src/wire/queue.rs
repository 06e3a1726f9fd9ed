//! The generation queue: `GET /v1/queue`, `DELETE /v1/queue/{id}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whose generation (administrators' view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueUser {
    /// The user's id; null for an anonymous guest.
    pub id: Option<String>,
    /// The username, or `guest:<network>`.
    pub username: String,
}

/// Queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueState {
    /// Waiting for a slot.
    Queued,
    /// Generating.
    Running,
}

/// One generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueEntry {
    /// The completion's id (`chatcmpl-…`, `cmpl-…`).
    pub id: String,
    /// The model.
    pub model: String,
    /// Queued or running.
    pub state: QueueState,
    /// Requests expected to start before it (0: next, or running).
    pub position: usize,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// Tokens generated so far.
    pub generated_tokens: usize,
    /// `memory` while a queued request, next in line, waits for room in
    /// the key/value cache (`kv_cache_mb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Whose it is (administrators see everyone's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<QueueUser>,
}

/// `GET /v1/queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    /// `list`.
    pub object: String,
    /// Oldest first.
    pub data: Vec<QueueEntry>,
}
