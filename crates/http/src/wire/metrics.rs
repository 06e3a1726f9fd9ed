//! `GET /v1/metrics/history`: the recent past of `GET /metrics` as points
//! for charts (the console's Metrics page).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The last hour, one point per interval, oldest first; the last point
/// runs from the last interval to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsHistory {
    /// Seconds between points.
    pub interval_seconds: u64,
    /// The points.
    pub points: Vec<MetricsPoint>,
}

/// What happened in one interval (counts) and how things stood at its end
/// (`running`, `queued`, `models_loaded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsPoint {
    /// The interval's end, Unix seconds.
    pub at: f64,
    /// The interval's length in seconds.
    pub seconds: f64,
    /// Requests to the OpenAI and Ollama APIs.
    pub requests: u64,
    /// Of those, answered with a 5xx status.
    pub errors: u64,
    /// Prompt tokens read (embeddings included).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Tokens generated per second over the interval, counted as they
    /// were generated (`generated_tokens` is credited when a generation
    /// ends).
    pub tokens_per_second: f64,
    /// Generations running at the end.
    pub running: u64,
    /// Generations waiting at the end.
    pub queued: u64,
    /// Models in memory at the end.
    pub models_loaded: u64,
    /// Time to the first token of the generations that finished.
    pub time_to_first_token: Quantiles,
    /// Time between two tokens.
    pub inter_token_latency: Quantiles,
    /// A generation from arrival to its last token.
    pub duration: Quantiles,
    /// Usage by user in the interval, most tokens first (empty when
    /// `metrics_per_user` is off).
    pub users: Vec<UserUsagePoint>,
}

/// Latency percentiles in seconds, estimated from the histogram buckets
/// (`null`: nothing observed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quantiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// One user's usage in an interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserUsagePoint {
    /// The username (`~guest`: anonymous guests, `~owner`: single-user
    /// mode).
    pub user: String,
    /// Inference requests.
    pub requests: u64,
    /// Prompt and generated tokens.
    pub tokens: u64,
}
