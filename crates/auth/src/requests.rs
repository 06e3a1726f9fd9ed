//! What callers hand the account service and what it hands back: its
//! config, the audit actor, account and login inputs, issued credentials,
//! and who may ask for setup or a key. Every type holding a password, token,
//! key or code has a redacted `Debug`.

use std::ops::RangeInclusive;

use offgrid_domain::invitation::Invitation;
use offgrid_domain::user::{ApiKey, User};
use offgrid_domain::{OperatorCapability, Principal, Role, SECS_PER_DAY, Timestamp, UserId};

use crate::service::now;
use crate::setup_code::SetupCode;
use crate::throttle::ThrottlePolicy;

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
    /// A session unused for this long stops working (0: never).
    pub session_idle_timeout_secs: i64,
    /// The first admin's setup takes over what single-user mode made (owned
    /// by the built-in `system` user), in the same transaction.
    pub adopt_existing_data: bool,
}

impl AuthConfig {
    /// Config from the user-facing settings (hours and days), with the
    /// default throttling policy and a one-day session idle timeout.
    pub fn from_settings(bcrypt_cost: u32, session_ttl_hours: u32, remember_me_days: u32) -> Self {
        AuthConfig {
            bcrypt_cost,
            session_ttl_secs: i64::from(session_ttl_hours) * 3600,
            remember_me_secs: i64::from(remember_me_days) * SECS_PER_DAY,
            throttle: ThrottlePolicy::default(),
            session_idle_timeout_secs: SECS_PER_DAY,
            adopt_existing_data: true,
        }
    }

    /// The same config with `adopt_existing_data` set.
    pub fn with_adopt_existing_data(self, adopt: bool) -> Self {
        AuthConfig {
            adopt_existing_data: adopt,
            ..self
        }
    }

    /// The same config with a session idle timeout in minutes (0: none).
    pub fn with_session_idle_timeout_minutes(self, minutes: u32) -> Self {
        AuthConfig {
            session_idle_timeout_secs: i64::from(minutes) * 60,
            ..self
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
    pub fn operator(_: &OperatorCapability) -> Self {
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

/// A new account's fields. `Debug` hides the password.
#[derive(Clone)]
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

/// A login attempt. `Debug` hides the password.
#[derive(Clone)]
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
    /// The device cookie the client presented, if any: while the account
    /// is locked, only its known devices get a password check.
    pub device: Option<String>,
}

/// A successful login. `Debug` hides the token.
#[derive(Clone)]
pub struct LoginOutcome {
    /// The PASETO token.
    pub token: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The account.
    pub user: User,
    /// A fresh device token for this account (the device cookie).
    pub device: String,
}

/// A key just created: the secret is shown once and never stored. `Debug`
/// hides it.
#[derive(Clone)]
pub struct IssuedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The whole secret.
    pub secret: String,
}

/// What entitles a caller to run first-run setup. `Debug` hides the code.
#[derive(Clone, Copy)]
pub enum SetupProof<'a> {
    /// Someone on this machine: the operator's CLI, or an HTTP client whose
    /// peer address is loopback.
    Local,
    /// A client elsewhere with the one-time code printed at start-up.
    Code {
        /// The server's code (`None` when it has none).
        expected: Option<&'a SetupCode>,
        /// What the client sent.
        given: &'a str,
    },
}

/// What `Debug` shows instead of a secret.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for AccountInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountInput")
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .finish()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login", &self.login)
            .field("password", &REDACTED)
            .field("remember_me", &self.remember_me)
            .field("client_addr", &self.client_addr)
            .field("user_agent", &self.user_agent)
            .field("device", &self.device.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl std::fmt::Debug for LoginOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOutcome")
            .field("token", &REDACTED)
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .field("device", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &self.key)
            .field("secret", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for SetupProof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupProof::Local => f.write_str("Local"),
            SetupProof::Code { .. } => f.write_str("Code(<redacted>)"),
        }
    }
}

/// How many days an API key may be given to live (`expires_in_days` over
/// HTTP, `--expires-in-days` in `offgrid-admin keys create`).
pub const KEY_EXPIRY_DAYS: RangeInclusive<u32> = 1..=3650;

/// When a key given `days` to live from now expires; `None` when `days`
/// is outside [`KEY_EXPIRY_DAYS`].
pub fn key_expiry_in_days(days: u32) -> Option<Timestamp> {
    KEY_EXPIRY_DAYS
        .contains(&days)
        .then(|| now().plus_days(i64::from(days)))
}

/// A new API key: whose, its name and optional expiry.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    /// The owner.
    pub owner: UserId,
    /// A name to recognise it by.
    pub name: String,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Whether requests made with the new key may create more keys.
    pub can_create_keys: bool,
}

/// Who asks for a new API key.
#[derive(Debug, Clone, Copy)]
pub enum KeyIssuer<'a> {
    /// A signed-in caller, with its account as read while its credential
    /// was checked: a key for themselves is stored only while they are
    /// still at that token epoch.
    Caller(&'a Authenticated),
    /// The machine's operator (`offgrid-admin`).
    Operator(&'a OperatorCapability),
}

/// How many hours an invitation may be given to live
/// (`expires_in_hours` over HTTP, `--expires-in-hours` in `offgrid-admin
/// invite create`): up to 30 days.
pub const INVITATION_EXPIRY_HOURS: RangeInclusive<u32> = 1..=720;
/// How long an invitation lives unless told otherwise: three days.
pub const DEFAULT_INVITATION_HOURS: u32 = 72;

/// A new invitation: the role the account will get, how long the code
/// works, and a note (whom it is for).
#[derive(Debug, Clone)]
pub struct InvitationRequest {
    /// Admin, User or Viewer (Guest is refused: guests need no account).
    pub role: Role,
    /// Within [`INVITATION_EXPIRY_HOURS`].
    pub expires_in_hours: u32,
    /// Up to 200 characters.
    pub note: Option<String>,
}

/// An invitation just made: its code is shown once and never stored.
/// `Debug` hides it.
#[derive(Clone)]
pub struct IssuedInvitation {
    /// The stored invitation.
    pub invitation: Invitation,
    /// The code, `ABCDE-FGHJK-…`.
    pub code: String,
}

/// Someone accepting an invitation: the code and their new account's
/// fields, with the client for throttling and the session record. `Debug`
/// hides the code and the password.
#[derive(Clone)]
pub struct AcceptInvitation {
    /// The invitation code.
    pub code: String,
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Client address, for throttling and the session record.
    pub client_addr: Option<String>,
    /// User agent, for the session record.
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for IssuedInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedInvitation")
            .field("invitation", &self.invitation)
            .field("code", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for AcceptInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptInvitation")
            .field("code", &REDACTED)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("email", &self.email)
            .field("client_addr", &self.client_addr)
            .field("user_agent", &self.user_agent)
            .finish()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerSecret;
    use offgrid_domain::ApiKeyId;

    #[test]
    fn keys_expire_whole_days_from_now_within_the_allowed_range() {
        let before = now();
        let expiry = key_expiry_in_days(30).expect("30 days is allowed");
        assert!(before.plus_days(30) <= expiry && expiry <= now().plus_days(30));
        assert!(key_expiry_in_days(*KEY_EXPIRY_DAYS.end()).is_some());
        assert_eq!(key_expiry_in_days(0), None);
        assert_eq!(key_expiry_in_days(KEY_EXPIRY_DAYS.end() + 1), None);
    }

    #[test]
    fn debug_never_shows_passwords_tokens_keys_or_codes() {
        let secret = "s3cret-Value-42";
        let user = User {
            id: UserId::generate(),
            username: "alice".into(),
            email: None,
            display_name: "Alice".into(),
            role: Role::User,
            disabled: false,
            system: false,
            token_epoch: 0,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            last_login_at: None,
        };
        let code = SetupCode::generate();
        let revealed = code.reveal();
        let shown = [
            format!(
                "{:?}",
                AccountInput {
                    username: "alice".into(),
                    password: secret.into(),
                    email: None,
                    display_name: None,
                    role: Role::User,
                }
            ),
            format!(
                "{:?}",
                LoginRequest {
                    login: "alice".into(),
                    password: secret.into(),
                    remember_me: false,
                    client_addr: None,
                    user_agent: None,
                    device: Some(secret.into()),
                }
            ),
            format!(
                "{:?}",
                LoginOutcome {
                    token: secret.into(),
                    expires_at: Timestamp(0),
                    user: user.clone(),
                    device: secret.into(),
                }
            ),
            format!(
                "{:?}",
                IssuedKey {
                    key: ApiKey {
                        id: ApiKeyId::generate(),
                        user_id: user.id.clone(),
                        name: "k".into(),
                        prefix: "og_abc".into(),
                        expires_at: None,
                        last_used_at: None,
                        created_at: Timestamp(0),
                        revoked_at: None,
                        can_create_keys: false,
                        epoch: 0,
                    },
                    secret: secret.into(),
                }
            ),
            format!(
                "{:?}",
                SetupProof::Code {
                    expected: Some(&code),
                    given: secret,
                }
            ),
            format!("{code:?}"),
            format!("{:?}", ServerSecret::generate()),
            format!(
                "{:?}",
                AcceptInvitation {
                    code: secret.into(),
                    username: "alice".into(),
                    password: secret.into(),
                    email: None,
                    client_addr: None,
                    user_agent: None,
                }
            ),
            format!(
                "{:?}",
                IssuedInvitation {
                    invitation: Invitation {
                        id: offgrid_domain::InvitationId::generate(),
                        role: Role::User,
                        note: None,
                        created_by: offgrid_domain::invitation::Inviter {
                            id: None,
                            name: "offgrid-admin".into(),
                        },
                        created_at: Timestamp(0),
                        expires_at: Timestamp(0),
                        used_at: None,
                        used_by: None,
                        revoked_at: None,
                    },
                    code: secret.into(),
                }
            ),
        ];
        for text in shown {
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains(&revealed), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }
}
