//! Quotas: `GET /v1/users/me/quota`, `GET|PUT /v1/users/{id}/quota`.

use offgrid_domain::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Limits; `null` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaLimits {
    /// Inference requests in any 60 seconds.
    pub requests_per_minute: Option<u64>,
    /// Prompt and completion tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Generations at once.
    pub max_concurrent: Option<u64>,
}

/// What was used of each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsed {
    /// Requests in the last 60 seconds.
    pub requests_per_minute: u64,
    /// Tokens today (UTC).
    pub tokens_per_day: u64,
    /// Generations now.
    pub max_concurrent: u64,
}

/// When the counts go down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaResets {
    /// When the oldest request of the last minute leaves the window
    /// (RFC 3339; null when there is none).
    #[schema(value_type = Option<String>)]
    pub requests_per_minute: Option<Timestamp>,
    /// Next midnight UTC.
    #[schema(value_type = String)]
    pub tokens_per_day: Timestamp,
}

/// A user's own limits in place of their role's: a field left out keeps
/// the role's default, `null` is unlimited, a number is the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    /// Requests per minute.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::present"
    )]
    #[schema(required = false, value_type = Option<u64>)]
    pub requests_per_minute: Option<Option<u64>>,
    /// Tokens per day.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::present"
    )]
    #[schema(required = false, value_type = Option<u64>)]
    pub tokens_per_day: Option<Option<u64>>,
    /// Generations at once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::present"
    )]
    #[schema(required = false, value_type = Option<u64>)]
    pub max_concurrent: Option<Option<u64>>,
}

/// A caller's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quota {
    /// The limits in force.
    pub limits: QuotaLimits,
    /// What was used.
    pub used: QuotaUsed,
    /// When the counts go down.
    pub resets_at: QuotaResets,
    /// The user's overrides (administrators' view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<QuotaOverrides>,
}

impl From<offgrid_workspace::quota::QuotaStatus> for Quota {
    fn from(s: offgrid_workspace::quota::QuotaStatus) -> Self {
        Quota {
            limits: QuotaLimits {
                requests_per_minute: s.limits.requests_per_minute,
                tokens_per_day: s.limits.tokens_per_day,
                max_concurrent: s.limits.max_concurrent,
            },
            used: QuotaUsed {
                requests_per_minute: s.requests,
                tokens_per_day: s.tokens,
                max_concurrent: s.running,
            },
            resets_at: QuotaResets {
                requests_per_minute: s.requests_reset_at,
                tokens_per_day: s.tokens_reset_at,
            },
            overrides: None,
        }
    }
}

impl From<offgrid_domain::quota::QuotaOverrides> for QuotaOverrides {
    fn from(o: offgrid_domain::quota::QuotaOverrides) -> Self {
        QuotaOverrides {
            requests_per_minute: o.requests_per_minute,
            tokens_per_day: o.tokens_per_day,
            max_concurrent: o.max_concurrent,
        }
    }
}

impl From<QuotaOverrides> for offgrid_domain::quota::QuotaOverrides {
    fn from(o: QuotaOverrides) -> Self {
        offgrid_domain::quota::QuotaOverrides {
            requests_per_minute: o.requests_per_minute,
            tokens_per_day: o.tokens_per_day,
            max_concurrent: o.max_concurrent,
        }
    }
}
