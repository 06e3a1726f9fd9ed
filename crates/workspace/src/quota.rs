//! Quotas: each caller's share of the box. Before any inference work a
//! request is admitted ([`Workspace::admit_quota`]): tokens used today
//! under the limit, a free generation place, and a place in the sliding
//! one-minute request window (counted in the database, exact under
//! concurrency and across processes). The limits are the role's defaults
//! ([`QuotaDefaults`], from the settings) with the user's overrides;
//! guests are counted per client network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use offgrid_domain::quota::{QuotaLimits, QuotaOverrides};
use offgrid_domain::{Permission, Principal, Role, Timestamp, UserId};
use offgrid_policy::authorize;

use crate::{Actor, Workspace, WorkspaceError};

/// The request window.
pub const WINDOW_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Each role's default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaDefaults {
    /// Administrators (and the single-user owner).
    pub admin: QuotaLimits,
    /// Users.
    pub user: QuotaLimits,
    /// Viewers.
    pub viewer: QuotaLimits,
    /// Guests, per client network.
    pub guest: QuotaLimits,
}

impl QuotaDefaults {
    /// The defaults of `role`.
    pub fn of(&self, role: Role) -> QuotaLimits {
        match role {
            Role::Admin => self.admin,
            Role::User => self.user,
            Role::Viewer => self.viewer,
            Role::Guest => self.guest,
        }
    }
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Requests per minute.
    RequestsPerMinute,
    /// Tokens per day.
    TokensPerDay,
    /// Generations at once.
    MaxConcurrent,
}

impl QuotaKind {
    /// The name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::RequestsPerMinute => "requests_per_minute",
            QuotaKind::TokensPerDay => "tokens_per_day",
            QuotaKind::MaxConcurrent => "max_concurrent",
        }
    }
}

/// A limit's standing, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    /// Which limit.
    pub kind: QuotaKind,
    /// The limit.
    pub limit: u64,
    /// What is left of it.
    pub remaining: u64,
    /// Seconds until a place frees up (or the count resets).
    pub reset_secs: u64,
}

/// The caller went over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded(pub RateInfo);

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RateInfo {
            kind,
            limit,
            reset_secs,
            ..
        } = self.0;
        match kind {
            QuotaKind::RequestsPerMinute => write!(
                f,
                "rate limit reached: {limit} requests per minute; try again in {reset_secs} s"
            ),
            QuotaKind::TokensPerDay => write!(
                f,
                "daily token quota of {limit} used up; it resets at midnight UTC, in {reset_secs} s"
            ),
            QuotaKind::MaxConcurrent => write!(
                f,
                "at most {limit} generations at once; wait for one to finish"
            ),
        }
    }
}

/// Generations running per subject, in this process.
#[derive(Debug, Default)]
pub(crate) struct Running(Mutex<HashMap<String, u64>>);

/// A generation place; dropping it frees the place.
#[derive(Debug)]
pub struct RunningGuard {
    running: Arc<Running>,
    subject: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut map = self
            .running
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.subject) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.subject);
            }
        }
    }
}

/// An admitted request: the request window's standing (for the headers)
/// and the generation place, held until the answer is done.
#[derive(Debug)]
pub struct QuotaPass {
    /// The requests-per-minute standing, when that limit applies.
    pub rate: Option<RateInfo>,
    /// The generation place, when that limit applies.
    pub guard: Option<RunningGuard>,
}

/// A subject's limits, what it used and when that resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    /// The limits in force.
    pub limits: QuotaLimits,
    /// Requests in the last minute.
    pub requests: u64,
    /// Tokens today.
    pub tokens: u64,
    /// Generations now.
    pub running: u64,
    /// When the oldest request in the window leaves it.
    pub requests_reset_at: Option<Timestamp>,
    /// Next midnight UTC.
    pub tokens_reset_at: Timestamp,
}

/// The quota subject of a caller: `user:<id>`, or `guest:<network>` for an
/// anonymous guest from `network`.
pub fn subject(principal: &Principal, network: &str) -> String {
    match &principal.user_id {
        Some(id) => format!("user:{id}"),
        None => format!("guest:{network}"),
    }
}

fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn secs_until(ms: i64) -> u64 {
    // Rounded up: a client that waits this long finds the place free.
    u64::try_from((ms.max(0) + 999) / 1000).unwrap_or(0)
}

/// An override for the audit log: `default`, `unlimited` or the limit.
fn describe(v: Option<Option<u64>>) -> serde_json::Value {
    match v {
        None => "default".into(),
        Some(None) => "unlimited".into(),
        Some(Some(n)) => n.into(),
    }
}

impl Workspace {
    /// The limits of a caller: their role's defaults with their own
    /// overrides.
    pub fn quota_limits(&self, principal: &Principal) -> Result<QuotaLimits, WorkspaceError> {
        let defaults = self.config.quotas.of(principal.role);
        Ok(match &principal.user_id {
            Some(id) if !id.is_system() => defaults.with(&self.quotas.overrides(id)?),
            _ => defaults,
        })
    }

    /// Admits one inference request of `principal` as `subject`, or says
    /// which limit it is over. Blocking (one write transaction).
    /// Only a `generation` takes a place under `max_concurrent`.
    pub fn admit_quota(
        &self,
        principal: &Principal,
        subject: &str,
        generation: bool,
    ) -> Result<Result<QuotaPass, QuotaExceeded>, WorkspaceError> {
        let limits = self.quota_limits(principal)?;
        let now = now_ms();
        let day = now.div_euclid(DAY_MS);
        if let Some(limit) = limits.tokens_per_day {
            let used = self.quotas.counters(subject, now, WINDOW_MS, day)?;
            if used.tokens_today >= limit {
                return Ok(Err(QuotaExceeded(RateInfo {
                    kind: QuotaKind::TokensPerDay,
                    limit,
                    remaining: 0,
                    reset_secs: secs_until((day + 1) * DAY_MS - now),
                })));
            }
        }
        let guard = match limits.max_concurrent.filter(|_| generation) {
            None => None,
            Some(limit) => {
                let mut map = self
                    .running
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let n = map.entry(subject.to_owned()).or_insert(0);
                if *n >= limit {
                    return Ok(Err(QuotaExceeded(RateInfo {
                        kind: QuotaKind::MaxConcurrent,
                        limit,
                        remaining: 0,
                        reset_secs: 1,
                    })));
                }
                *n += 1;
                Some(RunningGuard {
                    running: self.running.clone(),
                    subject: subject.to_owned(),
                })
            }
        };
        // Counted for everyone (the figures in /v1/users/me/quota), refused
        // only over a limit.
        let window = self.quotas.take_request(
            subject,
            now,
            WINDOW_MS,
            limits.requests_per_minute.unwrap_or(u64::MAX),
        )?;
        let rate = limits.requests_per_minute.map(|limit| RateInfo {
            kind: QuotaKind::RequestsPerMinute,
            limit,
            remaining: limit.saturating_sub(window.used),
            reset_secs: secs_until(window.oldest_ms.unwrap_or(now) + WINDOW_MS - now),
        });
        if !window.admitted {
            // `guard` is dropped: the generation place is free again.
            return Ok(Err(QuotaExceeded(rate.unwrap_or(RateInfo {
                kind: QuotaKind::RequestsPerMinute,
                limit: 0,
                remaining: 0,
                reset_secs: 1,
            }))));
        }
        Ok(Ok(QuotaPass { rate, guard }))
    }

    /// Adds a finished request's tokens to `subject`'s day. Blocking.
    pub fn record_quota_tokens(&self, subject: &str, tokens: u64) -> Result<(), WorkspaceError> {
        let day = now_ms().div_euclid(DAY_MS);
        Ok(self.quotas.add_tokens(subject, day, tokens)?)
    }

    /// The caller's own quota.
    pub fn quota_status(
        &self,
        principal: &Principal,
        subject: &str,
    ) -> Result<QuotaStatus, WorkspaceError> {
        let limits = self.quota_limits(principal)?;
        self.status(limits, subject)
    }

    fn status(&self, limits: QuotaLimits, subject: &str) -> Result<QuotaStatus, WorkspaceError> {
        let now = now_ms();
        let day = now.div_euclid(DAY_MS);
        let counters = self.quotas.counters(subject, now, WINDOW_MS, day)?;
        let running = self
            .running
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(subject)
            .copied()
            .unwrap_or(0);
        Ok(QuotaStatus {
            limits,
            requests: counters.requests,
            tokens: counters.tokens_today,
            running,
            requests_reset_at: counters
                .oldest_request_ms
                .map(|ms| Timestamp((ms + WINDOW_MS + 999) / 1000)),
            tokens_reset_at: Timestamp((day + 1) * DAY_MS / 1000),
        })
    }

    fn quota_admin(&self, actor: &Actor, user: &UserId) -> Result<Principal, WorkspaceError> {
        authorize(&actor.principal, Permission::ManageUsers)
            .map_err(|_| WorkspaceError::Forbidden("managing quotas needs manage_users"))?;
        let account = match self.users.get(user) {
            Ok(u) if !u.system => u,
            Ok(_) | Err(offgrid_domain::RepoError::NotFound) => {
                return Err(WorkspaceError::UserNotFound);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Principal {
            user_id: Some(account.id),
            role: account.role,
            credential: actor.principal.credential.clone(),
        })
    }

    /// A user's quota and overrides (administrators).
    pub fn user_quota(
        &self,
        actor: &Actor,
        user: &UserId,
    ) -> Result<(QuotaStatus, QuotaOverrides), WorkspaceError> {
        let principal = self.quota_admin(actor, user)?;
        let overrides = self.quotas.overrides(user)?;
        let status = self.quota_status(&principal, &subject(&principal, ""))?;
        Ok((status, overrides))
    }

    /// Replaces a user's overrides (administrators); audited.
    pub fn set_user_quota(
        &self,
        actor: &Actor,
        user: &UserId,
        overrides: &QuotaOverrides,
    ) -> Result<(QuotaStatus, QuotaOverrides), WorkspaceError> {
        self.quota_admin(actor, user)?;
        let limit_ok =
            |v: Option<Option<u64>>| v.flatten().is_none_or(|n| (1..=1 << 40).contains(&n));
        for (field, v) in [
            ("requests_per_minute", overrides.requests_per_minute),
            ("tokens_per_day", overrides.tokens_per_day),
            ("max_concurrent", overrides.max_concurrent),
        ] {
            if !limit_ok(v) {
                return Err(WorkspaceError::invalid(
                    field,
                    "a limit from 1 to 2^40, or null for unlimited",
                ));
            }
        }
        self.quotas.set_overrides(user, overrides, crate::now())?;
        self.record(
            actor,
            "quota.changed",
            format!("user:{user}"),
            serde_json::json!({
                "requests_per_minute": describe(overrides.requests_per_minute),
                "tokens_per_day": describe(overrides.tokens_per_day),
                "max_concurrent": describe(overrides.max_concurrent),
            }),
        );
        self.user_quota(actor, user)
    }

    /// Clears a user's counters (administrators); audited.
    pub fn reset_user_quota(&self, actor: &Actor, user: &UserId) -> Result<(), WorkspaceError> {
        let principal = self.quota_admin(actor, user)?;
        self.quotas.reset(&subject(&principal, ""))?;
        self.record(
            actor,
            "quota.reset",
            format!("user:{user}"),
            serde_json::json!({}),
        );
        Ok(())
    }
}
