//! The account service: setup, login, logout, credential checks, user and
//! API key management, each writing the audit log. Shared by the HTTP layer
//! and `offgrid-admin`, so both enforce the same rules.
//!
//! Every method is blocking (bcrypt, SQLite); async callers use a blocking
//! pool. Permission checks on *who may call* a method belong to the caller
//! (the HTTP route table, or the operator running `offgrid-admin`); rules
//! about *what may change* (last admin, system user, scopes) live here and in
//! storage.

use offgrid_domain::audit::NewAuditEvent;
use offgrid_domain::repo::Repositories;
use offgrid_domain::user::{
    Admission, ApiKey, AttemptKeys, LoginSession, NewApiKey, NewUser, ThrottledKey, User, UserPatch,
};
use offgrid_domain::{
    ApiKeyId, Credential, Principal, RepoError, Scope, SessionId, Timestamp, UserId,
};

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::device::DeviceKeys;
use crate::in_flight::InFlight;
use crate::password::{MAX_PASSWORD_CHARS, PasswordHasher, validate_password};
pub use crate::requests::{
    AccountInput, Actor, AuthConfig, Authenticated, IssuedKey, KeyIssuer, KeyRequest, LoginOutcome,
    LoginRequest, SetupProof,
};
use crate::setup_code::SetupCode;
use crate::token::{TOKEN_PREFIX, TokenKeys};
use crate::{AuthError, ServerSecret, api_key};

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

    /// Writes the refusals counted in memory to the audit log (each as
    /// repeats of its window's entry).
    ///
    /// Keys refused within the last interval stay known (their entry is
    /// written), so a steady flood costs one write per key per flush.
    pub fn flush_throttled_audit(&self) {
        let t = now();
        let due: Vec<_> = {
            let mut pending = self.pending_refusals();
            let due = pending
                .values_mut()
                .filter(|p| p.count > 0)
                .map(|p| (p.event.clone(), p.since, std::mem::take(&mut p.count)))
                .collect();
            pending.retain(|_, p| p.event.at.secs_until(t) < HOUSEKEEPING_INTERVAL_SECS);
            due
        };
        for (event, since, count) in due {
            if let Err(e) = self.repos.audit.append_coalesced(event, since, count) {
                tracing::error!(error = %e, "cannot write audit log");
            }
        }
    }

    /// Flushes counted refusals and prunes idle throttle counters; the
    /// server runs it every minute.
    pub fn housekeeping(&self) {
        let t = now();
        self.last_housekeeping.store(t.0, Ordering::Relaxed);
        self.flush_throttled_audit();
        if let Err(e) = self.repos.throttle.prune_stale(t) {
            tracing::error!(error = %e, "cannot prune throttle counters");
        }
    }

    /// Runs [`AuthService::housekeeping`] when a minute has passed since it
    /// last ran (at most one caller does).
    fn housekeeping_if_due(&self, t: Timestamp) {
        let last = self.last_housekeeping.load(Ordering::Relaxed);
        let due = t.0.saturating_sub(last) >= HOUSEKEEPING_INTERVAL_SECS;
        if due
            && self
                .last_housekeeping
                .compare_exchange(last, t.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.housekeeping();
        }
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

    /// Deletes audit entries older than `days` days (0 keeps everything);
    /// returns how many went, and records the pruning itself when any did.
    pub fn prune_audit(&self, days: u32, actor: &Actor) -> Result<u64, AuthError> {
        if days == 0 {
            return Ok(0);
        }
        let before = now().plus_days(-i64::from(days));
        let pruned = self.repos.audit.prune(before)?;
        if pruned > 0 {
            self.audit(
                actor,
                "audit.pruned",
                None,
                Some(serde_json::json!({"deleted": pruned, "older_than_days": days}).to_string()),
            );
        }
        Ok(pruned)
    }

    // ----- credentials -------------------------------------------------

    /// Resolves an `Authorization: Bearer` value: an API key (`og_…`) or a
    /// login token.
    pub fn authenticate_bearer(&self, value: &str) -> Result<Authenticated, AuthError> {
        if value.starts_with(api_key::KEY_PREFIX) {
            self.authenticate_api_key(value)
        } else {
            self.authenticate_token(value, false)
        }
    }

    /// Resolves a login token. Fails unless the token verifies, its session
    /// exists, is neither revoked, expired nor idle too long, belongs to the
    /// token's subject and matches the user's current token epoch, and the
    /// user is active.
    ///
    /// Idle: a session's last use is written at most once a minute, so its
    /// `last_seen_at` may lag the real last use by up to that; a session
    /// fails once `last_seen_at` is older than the timeout plus that minute,
    /// and never while it was really used within the timeout.
    pub fn authenticate_token(
        &self,
        token: &str,
        from_cookie: bool,
    ) -> Result<Authenticated, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(AuthError::Unauthenticated);
        }
        let claims = self.tokens.verify(token)?;
        let (session, user) = self
            .repos
            .sessions
            .find(&claims.session_id)?
            .ok_or(AuthError::Unauthenticated)?;
        let t = now();
        let idle_limit = self.config.session_idle_timeout_secs;
        let idle = idle_limit > 0
            && session.last_seen_at.secs_until(t) >= idle_limit.saturating_add(TOUCH_INTERVAL_SECS);
        let valid = session.user_id == claims.user_id
            && session.revoked_at.is_none()
            && session.expires_at > t
            && !idle
            && session.epoch == user.token_epoch
            && user.is_active();
        if !valid {
            return Err(AuthError::Unauthenticated);
        }
        if session.last_seen_at.secs_until(t) >= TOUCH_INTERVAL_SECS {
            self.repos.sessions.touch(&session.id, t)?;
        }
        Ok(Authenticated {
            principal: Principal {
                user_id: Some(user.id.clone()),
                role: user.role,
                credential: Credential::Session {
                    session_id: session.id,
                    from_cookie,
                },
            },
            user,
        })
    }

    /// Resolves an API key. Fails unless it is well formed, its digest
    /// matches, it is neither revoked nor expired, it matches the owner's
    /// token epoch and the owner is active.
    pub fn authenticate_api_key(&self, key: &str) -> Result<Authenticated, AuthError> {
        let prefix = api_key::public_prefix(key).ok_or(AuthError::Unauthenticated)?;
        let (record, user) = self
            .repos
            .api_keys
            .find_by_prefix(prefix)?
            .ok_or(AuthError::Unauthenticated)?;
        let t = now();
        let valid = api_key::matches(key, &record.secret_hash)
            && record.key.revoked_at.is_none()
            && record.key.expires_at.is_none_or(|e| e > t)
            && record.key.epoch == user.token_epoch
            && user.is_active();
        if !valid {
            return Err(AuthError::Unauthenticated);
        }
        let stale = record
            .key
            .last_used_at
            .is_none_or(|last| last.secs_until(t) >= TOUCH_INTERVAL_SECS);
        if stale {
            self.repos.api_keys.touch(&record.key.id, t)?;
        }
        Ok(Authenticated {
            principal: Principal {
                user_id: Some(user.id.clone()),
                role: user.role,
                credential: Credential::ApiKey {
                    key_id: record.key.id,
                },
            },
            user,
        })
    }

    // ----- setup, login, logout ----------------------------------------

    /// Whether first-admin setup is still open.
    pub fn setup_required(&self) -> Result<bool, AuthError> {
        Ok(!self.repos.users.admin_exists()?)
    }

    /// Creates the first administrator; `SetupDone` once one exists, checked
    /// before any input is validated or hashed (and again, atomically, when
    /// the account is stored). A remote client's setup code is checked next,
    /// also before hashing; wrong codes are throttled per address.
    pub fn setup(
        &self,
        input: AccountInput,
        proof: SetupProof<'_>,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        if self.repos.users.admin_exists()? {
            return Err(AuthError::SetupDone);
        }
        if let SetupProof::Code { expected, given } = proof {
            self.check_setup_code(expected, given, actor)?;
        }
        let new = self.new_user(input)?;
        let user = match self.repos.users.create_first_admin(new, now()) {
            Err(RepoError::Conflict(field)) if field == "admin" => {
                return Err(AuthError::SetupDone);
            }
            other => other?,
        };
        let actor = Actor {
            user_id: Some(user.id.clone()),
            ..actor.clone()
        };
        self.audit(
            &actor,
            "setup.admin_created",
            Some(user.id.to_string()),
            None,
        );
        Ok(user)
    }

    fn check_setup_code(
        &self,
        expected: Option<&SetupCode>,
        given: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let policy = self.config.throttle;
        let key = format!(
            "setup-code:{}",
            actor
                .client_addr
                .as_deref()
                .map_or_else(|| "unknown".to_owned(), address_key)
        );
        let keys = AttemptKeys {
            account: (&key, policy.user_threshold),
            address: None,
            known_device: false,
        };
        let t = now();
        self.housekeeping_if_due(t);
        let admission = self.admit(&keys, t)?;
        if let Admission::Refused { until, since, .. } = admission {
            self.audit_repeated(actor, "setup.throttled", None, since);
            return Err(AuthError::Throttled {
                retry_after_secs: t.secs_until(until).max(1),
            });
        }
        if !expected.is_some_and(|code| code.matches(given)) {
            self.audit(actor, "setup.code_rejected", None, None);
            return Err(AuthError::InvalidSetupCode);
        }
        self.repos.throttle.attempt_succeeded(&keys)?;
        Ok(())
    }

    /// Checks a password and opens a session.
    ///
    /// The login is resolved to its account first (no bcrypt), so a username
    /// and an e-mail share one throttle counter. At most a few logins per
    /// account and per address are verified at once (429 beyond). Each
    /// attempt is counted as a failure before the password is verified, in
    /// one transaction with the lock check, so concurrent attempts cannot all
    /// pass it; a success undoes the count. A locked account still lets its
    /// right password in from one of its known devices (a valid device
    /// cookie, from an address that is not locked itself); nobody else gets
    /// a password check against it. Every
    /// other failure is `InvalidCredentials` and costs one bcrypt
    /// verification.
    pub fn login(&self, req: &LoginRequest) -> Result<LoginOutcome, AuthError> {
        // Nothing longer than any account's name or password goes near the
        // database, the audit log or a throttle key.
        if req.login.chars().count() > MAX_LOGIN_CHARS {
            return Err(invalid(
                "username",
                format!("must be at most {MAX_LOGIN_CHARS} characters"),
            ));
        }
        if req.password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(invalid(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        let t = now();
        let policy = self.config.throttle;
        let actor = Actor {
            user_id: None,
            name: None,
            client_addr: req.client_addr.clone(),
        };
        let found = self.repos.users.find_for_login(&req.login)?;
        let account_key = match &found {
            Some(creds) => format!("account:{}", creds.user.id),
            None => format!("login:{}", req.login.to_lowercase()),
        };
        let addr_key = req.client_addr.as_deref().map(address_key);
        // Only the owner's known devices get past the account's lock, and
        // each of them only until it fails too often itself (so a stolen
        // device cookie is no way around the lock).
        let device_key = match (&found, &req.device) {
            (Some(creds), Some(device)) => self
                .devices
                .device_id(device, &creds.user.id, t)
                .map(|id| format!("device:{id}")),
            _ => None,
        };
        let device_failures = match &device_key {
            Some(key) => {
                let state = self.repos.throttle.get(key)?;
                if state.locked_until.is_some_and(|until| until > t) {
                    None
                } else {
                    Some(state.failures)
                }
            }
            None => None,
        };
        let known_device = device_failures.is_some();
        let busy = || AuthError::Throttled {
            retry_after_secs: 1,
        };
        self.housekeeping_if_due(t);
        let keys = AttemptKeys {
            account: (&account_key, policy.user_threshold),
            address: addr_key.as_deref().map(|k| (k, policy.addr_threshold)),
            known_device,
        };
        // Refusals write nothing but (once per window) the audit entry.
        let refuse = |by: ThrottledKey, until: Timestamp, since: Timestamp| {
            let target = match (by, &found) {
                (ThrottledKey::Address, _) => None,
                (ThrottledKey::Account, Some(creds)) => Some(creds.user.id.to_string()),
                (ThrottledKey::Account, None) => Some(req.login.to_lowercase()),
            };
            self.audit_repeated(&actor, "login.throttled", target, since);
            AuthError::Throttled {
                retry_after_secs: t.secs_until(until).max(1),
            }
        };
        // The address's slot and locks first, read only: an attempt refused
        // for its address or the account's lock never takes one of the
        // account's few slots, so a flood cannot crowd out the owner.
        let _addr_slot = match &addr_key {
            Some(key) => Some(
                self.in_flight
                    .try_enter(key, policy.max_in_flight_per_addr)
                    .ok_or_else(busy)?,
            ),
            None => None,
        };
        if let Admission::Refused { by, until, since } = self.repos.throttle.check(&keys, t)? {
            return Err(refuse(by, until, since));
        }
        // Only attempts going on to bcrypt hold an account slot.
        let account_slot = self
            .in_flight
            .try_enter(&account_key, policy.max_in_flight_per_account)
            .ok_or_else(busy)?;
        let admission = self
            .repos
            .throttle
            .begin_attempt(&keys, t, &|n, threshold| policy.backoff(n, threshold))?;
        let locked_until = match admission {
            Admission::Admitted {
                account_locked_until,
            } => account_locked_until,
            Admission::Refused { by, until, since } => {
                // Locked meanwhile: release the slot before any write.
                drop(account_slot);
                return Err(refuse(by, until, since));
            }
        };

        let ok = match &found {
            Some(creds) => {
                let matches = self.hasher.verify(&req.password, &creds.password_hash);
                matches && creds.user.is_active()
            }
            None => {
                self.hasher.dummy_verify();
                false
            }
        };
        let user = match (ok, found) {
            (true, Some(creds)) => creds.user,
            _ => {
                self.audit(&actor, "login.failed", Some(req.login.clone()), None);
                // Let through only because the device is known: the
                // account is still locked, and the device counts a failure.
                if let Some(until) = locked_until {
                    if let Some(key) = &device_key {
                        let threshold = policy.user_threshold;
                        self.repos
                            .throttle
                            .record_failure(key, t, &|n| policy.backoff(n, threshold))?;
                    }
                    return Err(AuthError::Throttled {
                        retry_after_secs: t.secs_until(until).max(1),
                    });
                }
                return Err(AuthError::InvalidCredentials);
            }
        };

        self.repos.throttle.attempt_succeeded(&keys)?;
        if let (Some(key), Some(1..)) = (&device_key, device_failures) {
            self.repos.throttle.reset(key)?;
        }
        let ttl = if req.remember_me {
            self.config.remember_me_secs
        } else {
            self.config.session_ttl_secs
        };
        // The epoch read with the verified password: if a password change,
        // reset, role change or disabling landed since, nothing is stored.
        let session = self
            .repos
            .sessions
            .create(LoginSession {
                id: SessionId::generate(),
                user_id: user.id.clone(),
                created_at: t,
                expires_at: t.plus_secs(ttl),
                last_seen_at: t,
                client_addr: req.client_addr.clone(),
                user_agent: req.user_agent.clone(),
                revoked_at: None,
                epoch: user.token_epoch,
            })
            .map_err(|e| match e {
                RepoError::StaleEpoch => AuthError::InvalidCredentials,
                other => other.into(),
            })?;
        let token = self
            .tokens
            .issue(&session.id, &user.id, session.expires_at)?;
        self.repos.users.record_login(&user.id, t)?;
        let actor = Actor {
            user_id: Some(user.id.clone()),
            ..actor
        };
        self.audit(&actor, "login.ok", Some(user.id.to_string()), None);
        let device = self.devices.issue(&user.id, t);
        let user = self.repos.users.get(&user.id)?;
        Ok(LoginOutcome {
            token,
            expires_at: session.expires_at,
            user,
            device,
        })
    }

    /// Ends the principal's session. An API key is not a session: it is
    /// left alone and the answer says so (`NotASession`), so a script that
    /// calls logout never silently keeps or loses its key. Guests have
    /// nothing to end.
    pub fn logout(&self, principal: &Principal, actor: &Actor) -> Result<(), AuthError> {
        if matches!(principal.credential, Credential::ApiKey { .. }) {
            return Err(AuthError::NotASession);
        }
        if let (Some(session), Some(user)) = (principal.session_id(), &principal.user_id) {
            self.repos
                .sessions
                .revoke(&Scope::owned_by(user.clone()), session, now())?;
            self.audit(actor, "logout", Some(user.to_string()), None);
        }
        Ok(())
    }

    /// Changes the principal's own password after checking the current one.
    /// Every other session and every API key of the user stops working; the
    /// session making the request stays valid.
    pub fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let id = principal
            .user_id
            .as_ref()
            .ok_or(AuthError::Unauthenticated)?;
        if id.is_system() {
            return Err(AuthError::SystemUser);
        }
        validate_password(new)?;
        if current.chars().count() > MAX_PASSWORD_CHARS {
            // Cannot be anyone's password; not worth a bcrypt run.
            return Err(AuthError::WrongCurrentPassword);
        }
        let user = self.repos.users.get(id)?;
        let creds = self
            .repos
            .users
            .find_for_login(&user.username)?
            .ok_or(AuthError::NotFound)?;
        // Wrong current passwords are throttled per user, counted before
        // the check like logins, so a stolen session cannot guess the
        // password at bcrypt speed.
        let policy = self.config.throttle;
        let key = format!("password:{id}");
        let keys = AttemptKeys {
            account: (&key, policy.user_threshold),
            address: None,
            known_device: false,
        };
        let t = now();
        self.housekeeping_if_due(t);
        let admission = self.admit(&keys, t)?;
        if let Admission::Refused { until, since, .. } = admission {
            self.audit_repeated(
                actor,
                "password.change_throttled",
                Some(id.to_string()),
                since,
            );
            return Err(AuthError::Throttled {
                retry_after_secs: t.secs_until(until).max(1),
            });
        }
        if !self.hasher.verify(current, &creds.password_hash) {
            self.audit(actor, "password.change_failed", Some(id.to_string()), None);
            return Err(AuthError::WrongCurrentPassword);
        }
        self.repos.throttle.attempt_succeeded(&keys)?;
        let hash = self.hasher.hash(new)?;
        self.repos
            .users
            .set_password(id, &hash, principal.session_id(), now())?;
        self.audit(actor, "password.changed", Some(id.to_string()), None);
        Ok(())
    }

    // ----- user management (callers check ManageUsers) ------------------

    fn new_user(&self, input: AccountInput) -> Result<NewUser, AuthError> {
        let username = input.username.trim().to_owned();
        validate_username(&username)?;
        let email = input
            .email
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        if let Some(email) = &email {
            validate_email(email)?;
        }
        let display_name = input
            .display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if let Some(d) = &display_name {
            validate_display_name(d)?;
        }
        let password_hash = self.hasher.hash(&input.password)?;
        Ok(NewUser {
            username,
            email,
            display_name,
            role: input.role,
            password_hash,
        })
    }

    /// Creates an account and, when `key_issuer` is given, a first API key
    /// named `default` (shown once).
    pub fn create_user(
        &self,
        input: AccountInput,
        key_issuer: Option<KeyIssuer<'_>>,
        actor: &Actor,
    ) -> Result<(User, Option<IssuedKey>), AuthError> {
        if let Some(issuer) = key_issuer {
            self.check_may_create_keys(issuer)?;
            // Refuse before creating anyone when the issuer has already
            // lost the epoch they were verified at; the key's insert checks
            // it again, atomically.
            if let Some((id, verified)) = issuer_binding(issuer)
                && self.repos.users.get(&id)?.token_epoch != verified
            {
                return Err(AuthError::Unauthenticated);
            }
        }
        let new = self.new_user(input)?;
        let role = new.role;
        let user = self.repos.users.create(new, now())?;
        self.audit(
            actor,
            "user.created",
            Some(user.id.to_string()),
            Some(serde_json::json!({"username": user.username, "role": role}).to_string()),
        );
        let key = match key_issuer {
            Some(issuer) => Some(self.store_api_key(
                &Scope::owned_by(user.id.clone()),
                &user,
                user.token_epoch,
                issuer_binding(issuer),
                "default",
                None,
                false,
                actor,
            )?),
            None => None,
        };
        Ok((user, key))
    }

    /// Changes role, display name, e-mail or disabled state. A role change
    /// or disabling ends every session and key of the user at once.
    pub fn update_user(
        &self,
        id: &UserId,
        patch: UserPatch,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        if let Some(d) = &patch.display_name {
            validate_display_name(d)?;
        }
        if let Some(Some(e)) = &patch.email {
            validate_email(e)?;
        }
        let before = self.repos.users.get(id)?;
        let user = self.repos.users.update(id, &patch, now())?;
        let details = serde_json::json!({
            "role": patch.role.filter(|r| *r != before.role).map(|r| [before.role, r]),
            "disabled": patch.disabled.filter(|d| *d != before.disabled),
            "display_name": patch.display_name.is_some(),
            "email": patch.email.is_some(),
        });
        self.audit(
            actor,
            "user.updated",
            Some(id.to_string()),
            Some(details.to_string()),
        );
        Ok(user)
    }

    /// Deletes an account with its keys and sessions.
    pub fn delete_user(&self, id: &UserId, actor: &Actor) -> Result<(), AuthError> {
        let user = self.repos.users.get(id)?;
        self.repos.users.delete(id)?;
        self.audit(
            actor,
            "user.deleted",
            Some(id.to_string()),
            Some(serde_json::json!({"username": user.username}).to_string()),
        );
        Ok(())
    }

    /// Sets a new password for another user; all their sessions and keys end.
    pub fn reset_password(&self, id: &UserId, new: &str, actor: &Actor) -> Result<(), AuthError> {
        let user = self.repos.users.get(id)?;
        if user.system {
            return Err(AuthError::SystemUser);
        }
        let hash = self.hasher.hash(new)?;
        self.repos.users.set_password(id, &hash, None, now())?;
        self.audit(actor, "password.reset", Some(id.to_string()), None);
        Ok(())
    }

    // ----- API keys -----------------------------------------------------

    /// Creates a key for `request.owner` (who must be inside `scope`), asked
    /// for by `issuer`. The key is stored only while the owner is still at
    /// the token epoch the issuer verified (for a caller's own key: the one
    /// read with their credential), so a password change, reset, role change
    /// or disabling that lands meanwhile is not outlived by the new key.
    pub fn create_api_key(
        &self,
        issuer: KeyIssuer<'_>,
        scope: &Scope,
        request: KeyRequest,
        actor: &Actor,
    ) -> Result<IssuedKey, AuthError> {
        self.check_may_create_keys(issuer)?;
        let owner = self.repos.users.get(&request.owner)?;
        let epoch = match issuer {
            KeyIssuer::Caller(caller) if caller.user.id == owner.id => caller.user.token_epoch,
            _ => owner.token_epoch,
        };
        // An admin issuing a key for someone else must still be at the
        // epoch their own credential was verified at when it is stored.
        let binding = issuer_binding(issuer).filter(|(id, _)| *id != owner.id);
        self.store_api_key(
            scope,
            &owner,
            epoch,
            binding,
            &request.name,
            request.expires_at,
            request.can_create_keys,
            actor,
        )
    }

    /// Logins may create API keys; an API key only if it was created with
    /// `can_create_keys`, so a leaked key cannot mint its own successors.
    fn check_may_create_keys(&self, issuer: KeyIssuer<'_>) -> Result<(), AuthError> {
        let KeyIssuer::Caller(caller) = issuer else {
            return Ok(());
        };
        let Credential::ApiKey { key_id } = &caller.principal.credential else {
            return Ok(());
        };
        let me = &caller.user.id;
        let key = self
            .repos
            .api_keys
            .get(&Scope::owned_by(me.clone()), me, key_id)?;
        if key.can_create_keys {
            Ok(())
        } else {
            Err(AuthError::KeyCannotCreateKeys)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_api_key(
        &self,
        scope: &Scope,
        owner: &User,
        epoch: i64,
        issuer: Option<(UserId, i64)>,
        name: &str,
        expires_at: Option<Timestamp>,
        can_create_keys: bool,
        actor: &Actor,
    ) -> Result<IssuedKey, AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "must be 1 to 100 characters"));
        }
        if expires_at.is_some_and(|e| e <= now()) {
            return Err(invalid("expires_at", "must be in the future"));
        }
        if owner.system {
            return Err(AuthError::SystemUser);
        }
        let owner = &owner.id;
        // A prefix clash is astronomically unlikely; retry a few times anyway.
        for _ in 0..3 {
            let generated = api_key::generate();
            let stored = self.repos.api_keys.create(
                scope,
                NewApiKey {
                    user_id: owner.clone(),
                    name: name.to_owned(),
                    prefix: generated.prefix.clone(),
                    secret_hash: generated.digest.clone(),
                    expires_at,
                    created_at: now(),
                    epoch,
                    can_create_keys,
                    issuer: issuer.clone(),
                },
            );
            match stored {
                Ok(key) => {
                    self.audit(
                        actor,
                        "api_key.created",
                        Some(key.id.to_string()),
                        Some(
                            serde_json::json!({
                                "owner": owner,
                                "name": key.name,
                                "can_create_keys": key.can_create_keys,
                            })
                            .to_string(),
                        ),
                    );
                    return Ok(IssuedKey {
                        key,
                        secret: generated.secret,
                    });
                }
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Internal(
            "could not generate a unique key prefix".to_owned(),
        ))
    }

    /// Keys of `owner` visible in `scope`.
    pub fn list_api_keys(&self, scope: &Scope, owner: &UserId) -> Result<Vec<ApiKey>, AuthError> {
        Ok(self.repos.api_keys.list(scope, owner)?)
    }

    /// Revokes a key of `owner` visible in `scope`.
    pub fn revoke_api_key(
        &self,
        scope: &Scope,
        owner: &UserId,
        id: &ApiKeyId,
        actor: &Actor,
    ) -> Result<ApiKey, AuthError> {
        let key = self.repos.api_keys.revoke(scope, owner, id, now())?;
        self.audit(
            actor,
            "api_key.revoked",
            Some(id.to_string()),
            Some(serde_json::json!({"owner": owner}).to_string()),
        );
        Ok(key)
    }
}
