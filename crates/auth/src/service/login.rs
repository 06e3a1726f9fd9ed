//! First-admin setup (with the remote setup code check), login with its
//! throttling and known-device rule, and logout.

use offgrid_domain::user::{Admission, AttemptKeys, LoginSession, ThrottledKey, User};
use offgrid_domain::{Credential, Principal, RepoError, Scope, SessionId, Timestamp};

use super::{
    AccountInput, Actor, AuthService, LoginOutcome, LoginRequest, MAX_LOGIN_CHARS, SetupProof,
    address_key, invalid, now,
};
use crate::AuthError;
use crate::password::MAX_PASSWORD_CHARS;
use crate::setup_code::SetupCode;

impl AuthService {
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
        let adopt = self.config.adopt_existing_data;
        let user = match self.repos.users.create_first_admin(new, now(), adopt) {
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
        let outcome = self.open_session(
            &user,
            req.remember_me,
            req.client_addr.clone(),
            req.user_agent.clone(),
            t,
        )?;
        let actor = Actor {
            user_id: Some(user.id.clone()),
            ..actor
        };
        self.audit(&actor, "login.ok", Some(user.id.to_string()), None);
        Ok(outcome)
    }

    /// Opens a session for `user`, whose password (or invitation) was just
    /// verified: the session row at the token epoch read with it (if a
    /// password change, reset, role change or disabling landed since,
    /// nothing is stored), its token, the login time and a device token.
    pub(super) fn open_session(
        &self,
        user: &User,
        remember_me: bool,
        client_addr: Option<String>,
        user_agent: Option<String>,
        t: Timestamp,
    ) -> Result<LoginOutcome, AuthError> {
        let ttl = if remember_me {
            self.config.remember_me_secs
        } else {
            self.config.session_ttl_secs
        };
        let session = self
            .repos
            .sessions
            .create(LoginSession {
                id: SessionId::generate(),
                user_id: user.id.clone(),
                created_at: t,
                expires_at: t.plus_secs(ttl),
                last_seen_at: t,
                client_addr,
                user_agent,
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
}
