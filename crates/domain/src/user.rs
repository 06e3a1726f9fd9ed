//! User accounts, API keys and login sessions as the domain sees them.

use serde::{Deserialize, Serialize};

use crate::{ApiKeyId, Role, SessionId, Timestamp, UserId};

/// A user account. The password hash is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Login name, unique without regard to ASCII case.
    pub username: String,
    /// Optional e-mail, also usable to log in; unique when present.
    pub email: Option<String>,
    /// Name shown in the UI.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// A disabled account can do nothing and cannot log in.
    pub disabled: bool,
    /// Whether this is the built-in system user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
    /// Bumped whenever every credential of the user must stop working.
    /// Never sent: 0 in a user read from JSON.
    #[serde(skip)]
    pub token_epoch: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
}

impl User {
    /// Whether the user may act at all (not disabled, not the system user).
    pub fn is_active(&self) -> bool {
        !self.disabled && !self.system
    }
}

/// A user to create. `Debug` hides the password hash.
#[derive(Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Display name; defaults to the username when `None`.
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
    /// Versioned password hash from the auth crate.
    pub password_hash: String,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New role.
    pub role: Option<Role>,
    /// New display name.
    pub display_name: Option<String>,
    /// New e-mail (`Some(None)` clears it).
    pub email: Option<Option<String>>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// What a login lookup needs: the user and its stored hash. `Debug` hides
/// the hash.
#[derive(Clone)]
pub struct UserCredentials {
    /// The account.
    pub user: User,
    /// Versioned password hash.
    pub password_hash: String,
}

/// Filter and paging for user listings.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// Case-insensitive substring of username, display name or e-mail.
    pub search: Option<String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// One page of a listing plus the total number of matching rows.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Rows matching the filter, over all pages.
    pub total: i64,
    /// Page size used.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Row id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Name given at creation.
    pub name: String,
    /// Public prefix (`og_` and a few characters) to recognise the key.
    pub prefix: String,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Last successful use.
    pub last_used_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// Whether requests made with this key may create more API keys.
    pub can_create_keys: bool,
    /// The owner's token epoch when the key was made.
    #[serde(skip)]
    pub epoch: i64,
}

/// An API key to store. `Debug` hides the digest.
#[derive(Clone)]
pub struct NewApiKey {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub secret_hash: Vec<u8>,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// The owner's token epoch as verified by whoever asks for the key: the
    /// key is stored only while the owner is still at this epoch.
    pub epoch: i64,
    /// Whether requests made with this key may create more API keys.
    pub can_create_keys: bool,
    /// Who asks for the key, when it is not the owner or the operator: their
    /// account and the token epoch their credential was verified at. The key
    /// is stored only while they are still at it, so an admin demoted,
    /// disabled or reset meanwhile gets nothing.
    pub issuer: Option<(UserId, i64)>,
}

/// A stored key with its digest, for authentication. `Debug` hides the
/// digest.
#[derive(Clone)]
pub struct ApiKeyRecord {
    /// The key.
    pub key: ApiKey,
    /// SHA-256 of the whole key.
    pub secret_hash: Vec<u8>,
}

/// A login session (one issued token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginSession {
    /// Token id (`jti`).
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Issue time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Last request seen with this token.
    pub last_seen_at: Timestamp,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The owner's token epoch when the session began: the epoch read with
    /// the password that was verified. The session is stored only while the
    /// owner is still at this epoch.
    #[serde(skip)]
    pub epoch: i64,
}

/// Login throttling state for one key (a username or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// Consecutive failures.
    pub failures: u32,
    /// No attempt is judged before this time.
    pub locked_until: Option<Timestamp>,
}

/// The throttle keys of one attempt, each with its failure threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptKeys<'a> {
    /// The account (`account:<id>`), or the name when it names no account.
    pub account: (&'a str, u32),
    /// The client address (`addr:<ip>`, IPv6 by /64), when known.
    pub address: Option<(&'a str, u32)>,
    /// The client presented a valid device cookie of the account: the only
    /// way past the account's lock.
    pub known_device: bool,
}

/// Which key refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledKey {
    /// The account (or login name) is locked and the client is not one of
    /// its known devices.
    Account,
    /// The client address is locked.
    Address,
}

/// What [`crate::repo::ThrottleRepository::begin_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead: the attempt is already counted as a failure.
    Admitted {
        /// The account was locked, and the attempt got through only because
        /// it came from a known device: a wrong password still answers
        /// "locked".
        account_locked_until: Option<Timestamp>,
    },
    /// Refused, nothing counted.
    Refused {
        /// The key that refused.
        by: ThrottledKey,
        /// When that key's lock ends.
        until: Timestamp,
        /// When that lock began (its last counted failure): one lock window.
        since: Timestamp,
    },
}

/// What `Debug` shows instead of a secret or its hash.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("password_hash", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("password_hash", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("secret_hash", &REDACTED)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("epoch", &self.epoch)
            .field("can_create_keys", &self.can_create_keys)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("key", &self.key)
            .field("secret_hash", &REDACTED)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_hashes() {
        let hash = "$ogv1$$2b$04$abcdefghijklmnopqrstuv";
        let new = NewUser {
            username: "alice".into(),
            email: None,
            display_name: None,
            role: Role::User,
            password_hash: hash.into(),
        };
        let key = NewApiKey {
            user_id: UserId::generate(),
            name: "k".into(),
            prefix: "og_abc".into(),
            secret_hash: vec![0xAB; 32],
            expires_at: None,
            created_at: Timestamp(0),
            epoch: 0,
            can_create_keys: false,
            issuer: None,
        };
        for text in [format!("{new:?}"), format!("{key:?}")] {
            assert!(!text.contains(hash) && !text.contains("171, 171"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }
}
