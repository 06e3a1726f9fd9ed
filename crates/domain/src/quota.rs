//! Quotas: how much inference one caller may use. Three limits, each
//! either a number or unlimited: requests per minute (a sliding window),
//! tokens per UTC day (prompt and completion) and generations at once.
//! Every role has defaults; a user may have overrides.

use serde::{Deserialize, Serialize};

/// A caller's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaLimits {
    /// Inference requests in any 60 seconds.
    pub requests_per_minute: Option<u64>,
    /// Prompt and completion tokens in one UTC day.
    pub tokens_per_day: Option<u64>,
    /// Generations running or queued at once.
    pub max_concurrent: Option<u64>,
}

impl QuotaLimits {
    /// No limit at all.
    pub const UNLIMITED: QuotaLimits = QuotaLimits {
        requests_per_minute: None,
        tokens_per_day: None,
        max_concurrent: None,
    };

    /// These limits with `overrides` applied.
    pub fn with(self, overrides: &QuotaOverrides) -> QuotaLimits {
        QuotaLimits {
            requests_per_minute: overrides
                .requests_per_minute
                .unwrap_or(self.requests_per_minute),
            tokens_per_day: overrides.tokens_per_day.unwrap_or(self.tokens_per_day),
            max_concurrent: overrides.max_concurrent.unwrap_or(self.max_concurrent),
        }
    }
}

/// A user's own limits in place of their role's: for each, `None` keeps
/// the role's default, `Some(None)` is unlimited, `Some(Some(n))` is `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaOverrides {
    /// Requests per minute.
    pub requests_per_minute: Option<Option<u64>>,
    /// Tokens per day.
    pub tokens_per_day: Option<Option<u64>>,
    /// Generations at once.
    pub max_concurrent: Option<Option<u64>>,
}

impl QuotaOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == QuotaOverrides::default()
    }
}

/// What one request-window admission found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestWindow {
    /// The request was counted (under the limit).
    pub admitted: bool,
    /// Requests in the window, this one included if admitted.
    pub used: u64,
    /// When the oldest request in the window was made (ms since the
    /// epoch), if any: the window frees a place 60 s after it.
    pub oldest_ms: Option<i64>,
}

/// A subject's counters now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaCounters {
    /// Requests in the last 60 seconds.
    pub requests: u64,
    /// The oldest of them (ms since the epoch).
    pub oldest_request_ms: Option<i64>,
    /// Tokens used today (UTC).
    pub tokens_today: u64,
}
