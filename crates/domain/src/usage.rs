//! Token usage per request, per user and per API key.

use serde::{Deserialize, Serialize};

use crate::{ApiKeyId, Timestamp, UserId};

/// One request's usage, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsage {
    /// When it finished.
    pub at: Timestamp,
    /// The user (`None` for anonymous guests).
    pub user_id: Option<UserId>,
    /// The API key used, if any.
    pub api_key_id: Option<ApiKeyId>,
    /// Model id.
    pub model: String,
    /// `chat.completions`, `completions` or `embeddings`.
    pub endpoint: String,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Wall time in milliseconds.
    pub duration_ms: i64,
}

/// Totals for one (user, model) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotal {
    /// The user (`None`: anonymous guests).
    pub user_id: Option<UserId>,
    /// Model id.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}
