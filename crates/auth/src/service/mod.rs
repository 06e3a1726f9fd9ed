//! The account service: setup, login, logout, credential checks, user and
//! API key management, each writing the audit log. Shared by the HTTP layer
//! and `offgrid-admin`, so both enforce the same rules.
//!
//! Every method is blocking (bcrypt, SQLite); async callers use a blocking
//! pool. Permission checks on *who may call* a method belong to the caller
//! (the HTTP route table, or the operator running `offgrid-admin`); rules
//! about *what may change* (last admin, system user, scopes) live here and in
//! storage.
//!
//! The methods are split by area, each file with its own `impl AuthService`:
//! credential checks in `authenticate`, setup, login and logout in `login`,
//! password changes and user management in `accounts`, API keys in `keys`,
//! invitations (made by administrators, accepted by newcomers) in
//! `invitations`, and the audit flush, throttle pruning and audit retention in
//! `housekeeping`. This file holds the service itself, its audit and
//! throttle-admission helpers, and the shared validators.

mod accounts;
mod authenticate;
mod housekeeping;
mod invitations;
mod keys;
mod login;

use offgrid_domain::audit::NewAuditEvent;
use offgrid_domain::repo::Repositories;
use offgrid_domain::user::{Admission, AttemptKeys};
use offgrid_domain::{Timestamp, UserId};

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use crate::device::DeviceKeys;
use crate::in_flight::InFlight;
use crate::password::PasswordHasher;
pub use crate::requests::{
    AcceptInvitation, AccountInput, Actor, AuthConfig, Authenticated, InvitationRequest,
    IssuedInvitation, IssuedKey, KeyIssuer, KeyRequest, LoginOutcome, LoginRequest, SetupProof,
};
use crate::token::TokenKeys;
use crate::{AuthError, ServerSecret};

/// How often last-seen / last-used times are written, at most.
const TOUCH_INTERVAL_SECS: i64 = 60;
/// Longest login name accepted: the longest e-mail (usernames are shorter).
pub const MAX_LOGIN_CHARS: usize = 254;

/// Authentication and account management.
pub struct AuthService {
    repos: Repositories,
    hasher: PasswordHasher,
    tokens: TokenKeys,
    config: AuthConfig,
    in_flight: InFlight,
    devices: DeviceKeys,
    /// Throttled refusals counted in memory, written to the audit log by
    /// [`AuthService::flush_throttled_audit`].
    refusals: Mutex<HashMap<RefusalKey, PendingRefusal>>,
    /// When housekeeping (flush, throttle pruning) last ran.
    last_housekeeping: AtomicI64,
}

/// One audit entry's identity: action, target, client address, window.
type RefusalKey = (String, Option<String>, Option<String>, i64);

/// Refusals of one key not yet in the audit log.
struct PendingRefusal {
    event: NewAuditEvent,
    since: Timestamp,
    count: u32,
}

/// Distinct refusal keys held in memory; beyond it, a new key's refusals
/// are written one by one.
const MAX_PENDING_REFUSALS: usize = 10_000;
/// How often housekeeping runs at most: pending refusals go to the audit
/// log and idle throttle counters are pruned.
pub const HOUSEKEEPING_INTERVAL_SECS: i64 = 60;

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The current time.
pub fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    )
}

fn invalid(field: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field,
        message: message.into(),
    }
}

/// The throttle key of a client address: IPv4 as is, IPv6 by its /64 (one
/// host usually owns a whole /64, so single addresses cost it nothing).
pub fn address_key(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("addr:{net}/64")
        }
        Ok(std::net::IpAddr::V4(v4)) => format!("addr:{v4}"),
        Err(_) => format!("addr:{addr}"),
    }
}

/// A signed-in issuer's account and the token epoch it was verified at
/// (`None` for the operator).
fn issuer_binding(issuer: KeyIssuer<'_>) -> Option<(UserId, i64)> {
    match issuer {
        KeyIssuer::Caller(caller) => Some((caller.user.id.clone(), caller.user.token_epoch)),
        KeyIssuer::Operator(_) => None,
    }
}

fn validate_username(name: &str) -> Result<(), AuthError> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(invalid("username", "must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(invalid(
            "username",
            "may contain only letters, digits and . _ - @",
        ));
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<(), AuthError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(())
    } else {
        Err(invalid("email", "must look like name@host"))
    }
}

fn validate_display_name(name: &str) -> Result<(), AuthError> {
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) {
        return Err(invalid(
            "display_name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(())
}

impl AuthService {
    /// A service over `repos` with keys derived from `secret`. Computes one
    /// bcrypt hash (the dummy), so it is blocking.
    pub fn new(
        repos: Repositories,
        secret: &ServerSecret,
        config: AuthConfig,
    ) -> Result<Self, AuthError> {
        Ok(AuthService {
            hasher: PasswordHasher::new(
                secret.derive("offgrid/password-pepper/v1"),
                config.bcrypt_cost,
            )?,
            tokens: TokenKeys::new(secret.derive("offgrid/paseto-v4-local/v1"))?,
            devices: DeviceKeys::new(secret.derive("offgrid/device-cookie/v1")),
            repos,
            config,
            in_flight: InFlight::new(),
            refusals: Mutex::new(HashMap::new()),
            last_housekeeping: AtomicI64::new(now().0),
        })
    }

    /// The repositories, for plain reads (listing users, reading the audit
    /// log) that need no rule beyond the caller's permission.
    pub fn repos(&self) -> &Repositories {
        &self.repos
    }

    fn audit(&self, actor: &Actor, action: &str, target: Option<String>, details: Option<String>) {
        let actor_name = actor.name.clone().or_else(|| {
            actor
                .user_id
                .as_ref()
                .and_then(|id| self.repos.users.get(id).ok())
                .map(|u| u.username)
        });
        let event = NewAuditEvent {
            at: now(),
            actor_id: actor.user_id.clone().filter(|id| !id.is_system()),
            actor: actor_name,
            action: action.to_owned(),
            target,
            client_addr: actor.client_addr.clone(),
            details,
        };
        if let Err(e) = self.repos.audit.append(event) {
            tracing::error!(action, error = %e, "cannot write audit log");
        }
    }

    /// Records an event that may repeat many times in a window (from
    /// `since`): one entry per window, counting repeats. Only the first
    /// refusal of a key since the last flush is written at once; the rest
    /// are counted in memory, so a refused attempt costs no write.
    fn audit_repeated(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<String>,
        since: Timestamp,
    ) {
        let event = NewAuditEvent {
            at: now(),
            actor_id: actor.user_id.clone().filter(|id| !id.is_system()),
            actor: actor.name.clone(),
            action: action.to_owned(),
            target,
            client_addr: actor.client_addr.clone(),
            details: None,
        };
        let key = (
            event.action.clone(),
            event.target.clone(),
            event.client_addr.clone(),
            since.0,
        );
        let first = {
            let mut refusals = self.pending_refusals();
            match refusals.get_mut(&key) {
                Some(pending) => {
                    pending.count = pending.count.saturating_add(1);
                    pending.event.at = event.at;
                    false
                }
                None => {
                    if refusals.len() < MAX_PENDING_REFUSALS {
                        refusals.insert(
                            key,
                            PendingRefusal {
                                event: event.clone(),
                                since,
                                count: 0,
                            },
                        );
                    }
                    true
                }
            }
        };
        if first && let Err(e) = self.repos.audit.append_coalesced(event, since, 1) {
            tracing::error!(action, error = %e, "cannot write audit log");
        }
    }

    fn pending_refusals(&self) -> std::sync::MutexGuard<'_, HashMap<RefusalKey, PendingRefusal>> {
        self.refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Judges an attempt read-only first, so a refusal writes nothing, and
    /// only then counts it in a write transaction (which judges again).
    fn admit(&self, keys: &AttemptKeys<'_>, t: Timestamp) -> Result<Admission, AuthError> {
        let policy = self.config.throttle;
        if let refused @ Admission::Refused { .. } = self.repos.throttle.check(keys, t)? {
            return Ok(refused);
        }
        Ok(self
            .repos
            .throttle
            .begin_attempt(keys, t, &|n, threshold| policy.backoff(n, threshold))?)
    }
}
