//! The API's wire format: every request and response body as plain
//! `Serialize + Deserialize` structs (stream chunks included), so the
//! server, `offgrid run|chat`, the tests and other Rust programs share one
//! definition. The route handlers build these and nothing else.
//!
//! Request structs accept what OpenAI's clients send; what the values may
//! be is checked by the routes (`routes::openai::params`), so a wrong value
//! gets an error naming its field rather than a generic parse failure.

pub mod accounts;
pub mod benchmark;
pub mod completions;
pub mod embeddings;
pub mod invitations;
pub mod metrics;
pub mod models;
pub mod ollama;
pub mod presets;
pub mod queue;
pub mod quota;
pub mod rag;
pub mod sessions;
pub mod system;

pub use accounts::*;
pub use benchmark::*;
pub use completions::*;
pub use embeddings::*;
pub use invitations::*;
pub use metrics::*;
pub use models::*;
pub use ollama::*;
pub use presets::*;
pub use queue::*;
pub use quota::*;
pub use rag::*;
pub use sessions::*;
pub use system::*;

use serde::{Deserialize, Serialize};

/// A field that may be absent (outer `None`) or null (inner `None`).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Token counts of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TokenUsage)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Both.
    pub total_tokens: usize,
    /// Chat in a session: the oldest stored messages left out to fit the
    /// model's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_messages: Option<usize>,
}

impl Usage {
    /// Counts for a prompt and a completion.
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            truncated_messages: None,
        }
    }
}

/// Every error answer: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// For people.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `server_error`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// For programs: what exactly.
    pub code: String,
}
