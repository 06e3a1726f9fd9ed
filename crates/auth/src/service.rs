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
use offgrid_domain::user::{ApiKey, LoginSession, NewApiKey, NewUser, User, UserPatch};
use offgrid_domain::{
    ApiKeyId, Credential, Principal, RepoError, Role, Scope, SessionId, Timestamp, UserId,
};

use crate::password::{PasswordHasher, validate_password};
use crate::throttle::ThrottlePolicy;
use crate::token::{TOKEN_PREFIX, TokenKeys};
use crate::{AuthError, ServerSecret, api_key};

/// How often last-seen / last-used times are written, at most.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// Settings the service needs.
#[derive(Debug, Clone, Copy)]
pub struct AuthConfig {
    /// bcrypt work factor.
    pub bcrypt_cost: u32,
    /// Token lifetime without "remember me".
    pub session_ttl_secs: i64,
    /// Token lifetime with "remember me".
    pub remember_me_secs: i64,
    /// Login throttling.
    pub throttle: ThrottlePolicy,
}

impl AuthConfig {
    /// Config from the user-facing settings (hours and days), with the
    /// default throttling policy.
    pub fn from_settings(bcrypt_cost: u32, session_ttl_hours: u32, remember_me_days: u32) -> Self {
        AuthConfig {
            bcrypt_cost,
            session_ttl_secs: i64::from(session_ttl_hours) * 3600,
            remember_me_secs: i64::from(remember_me_days) * 86_400,
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// Who performs an operation, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Acting user, if any.
    pub user_id: Option<UserId>,
    /// Name to record when there is no user (e.g. the operator CLI).
    pub name: Option<String>,
    /// Client address, over HTTP.
    pub client_addr: Option<String>,
}

impl Actor {
    /// The machine's operator using `offgrid-admin`.
    pub fn operator() -> Self {
        Actor {
            user_id: None,
            name: Some("offgrid-admin".to_owned()),
            client_addr: None,
        }
    }

    /// A request's principal from `client_addr`.
    pub fn request(principal: Option<&Principal>, client_addr: Option<String>) -> Self {
        Actor {
            user_id: principal.and_then(|p| p.user_id.clone()),
            name: None,
            client_addr,
        }
    }
}

/// A new account's fields.
#[derive(Debug, Clone)]
pub struct AccountInput {
    /// Login name.
    pub username: String,
    /// Password (validated, hashed here).
    pub password: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Role (ignored by setup, which always makes an admin).
    pub role: Role,
}

/// A login attempt.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// Username or e-mail.
    pub login: String,
    /// Password.
    pub password: String,
    /// Longer-lived token.
    pub remember_me: bool,
    /// Client address, for throttling and the session record.
    pub client_addr: Option<String>,
    /// User agent, for the session record.
    pub user_agent: Option<String>,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The PASETO token.
    pub token: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The account.
    pub user: User,
}

/// A key just created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The whole secret.
    pub secret: String,
}

/// A resolved credential: who is calling, and their account as loaded
/// during the check (so handlers need not load it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The principal to authorize.
    pub principal: Principal,
    /// The account behind it.
    pub user: User,
}

/// Authentication and account management.
pub struct AuthService {
    repos: Repositories,
    hasher: PasswordHasher,
    tokens: TokenKeys,
    config: AuthConfig,
}

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
            repos,
            config,
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
    /// exists, is neither revoked nor expired, belongs to the token's subject
    /// and matches the user's current token epoch, and the user is active.
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
        let valid = session.user_id == claims.user_id
            && session.revoked_at.is_none()
            && session.expires_at > t
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

    /// Creates the first administrator; `SetupDone` once one exists.
    pub fn setup(&self, input: AccountInput, actor: &Actor) -> Result<User, AuthError> {
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

    fn throttle_keys(&self, req: &LoginRequest) -> Vec<(String, u32)> {
        let policy = self.config.throttle;
        let mut keys = vec![(
            format!("user:{}", req.login.to_lowercase()),
            policy.user_threshold,
        )];
        if let Some(addr) = &req.client_addr {
            keys.push((format!("addr:{addr}"), policy.addr_threshold));
        }
        keys
    }

    /// Checks a password and opens a session. Throttled logins fail with
    /// `Throttled` whatever the password; every other failure is
    /// `InvalidCredentials` and costs one bcrypt verification.
    pub fn login(&self, req: &LoginRequest) -> Result<LoginOutcome, AuthError> {
        let t = now();
        let keys = self.throttle_keys(req);
        let mut wait = 0;
        for (key, _) in &keys {
            if let Some(until) = self.repos.throttle.get(key)?.locked_until {
                wait = wait.max(t.secs_until(until));
            }
        }
        let actor = Actor {
            user_id: None,
            name: None,
            client_addr: req.client_addr.clone(),
        };
        if wait > 0 {
            self.audit(&actor, "login.throttled", Some(req.login.clone()), None);
            return Err(AuthError::Throttled {
                retry_after_secs: wait,
            });
        }

        let found = self.repos.users.find_for_login(&req.login)?;
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
                let policy = self.config.throttle;
                for (key, threshold) in &keys {
                    self.repos
                        .throttle
                        .record_failure(key, t, &|n| policy.backoff(n, *threshold))?;
                }
                self.audit(&actor, "login.failed", Some(req.login.clone()), None);
                return Err(AuthError::InvalidCredentials);
            }
        };

        if let Some((user_key, _)) = keys.first() {
            self.repos.throttle.reset(user_key)?;
        }
        let ttl = if req.remember_me {
            self.config.remember_me_secs
        } else {
            self.config.session_ttl_secs
        };
        let session = self.repos.sessions.create(LoginSession {
            id: SessionId::generate(),
            user_id: user.id.clone(),
            created_at: t,
            expires_at: t.plus_secs(ttl),
            last_seen_at: t,
            client_addr: req.client_addr.clone(),
            user_agent: req.user_agent.clone(),
            revoked_at: None,
            epoch: user.token_epoch,
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
        let user = self.repos.users.get(&user.id)?;
        Ok(LoginOutcome {
            token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// Ends the principal's session (no-op for API keys and guests).
    pub fn logout(&self, principal: &Principal, actor: &Actor) -> Result<(), AuthError> {
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
        let user = self.repos.users.get(id)?;
        let creds = self
            .repos
            .users
            .find_for_login(&user.username)?
            .ok_or(AuthError::NotFound)?;
        if !self.hasher.verify(current, &creds.password_hash) {
            self.audit(actor, "password.change_failed", Some(id.to_string()), None);
            return Err(AuthError::WrongCurrentPassword);
        }
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

    /// Creates an account and, when `with_key`, a first API key named
    /// `default` (shown once).
    pub fn create_user(
        &self,
        input: AccountInput,
        with_key: bool,
        actor: &Actor,
    ) -> Result<(User, Option<IssuedKey>), AuthError> {
        let new = self.new_user(input)?;
        let role = new.role;
        let user = self.repos.users.create(new, now())?;
        self.audit(
            actor,
            "user.created",
            Some(user.id.to_string()),
            Some(serde_json::json!({"username": user.username, "role": role}).to_string()),
        );
        let key = if with_key {
            Some(self.create_api_key(&Scope::operator(), &user.id, "default", None, actor)?)
        } else {
            None
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

    /// Creates a key for `owner` (which must be inside `scope`).
    pub fn create_api_key(
        &self,
        scope: &Scope,
        owner: &UserId,
        name: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> Result<IssuedKey, AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "must be 1 to 100 characters"));
        }
        if expires_at.is_some_and(|e| e <= now()) {
            return Err(invalid("expires_at", "must be in the future"));
        }
        let owner_user = self.repos.users.get(owner)?;
        if owner_user.system {
            return Err(AuthError::SystemUser);
        }
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
                },
            );
            match stored {
                Ok(key) => {
                    self.audit(
                        actor,
                        "api_key.created",
                        Some(key.id.to_string()),
                        Some(serde_json::json!({"owner": owner, "name": key.name}).to_string()),
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
