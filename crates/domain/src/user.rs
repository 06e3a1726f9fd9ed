//! User accounts, API keys and login sessions as the domain sees them.

use serde::Serialize;

use crate::{ApiKeyId, Role, SessionId, Timestamp, UserId};

/// A user account. The password hash is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
    /// Bumped whenever every credential of the user must stop working.
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

/// A user to create.
#[derive(Debug, Clone)]
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

/// What a login lookup needs: the user and its stored hash.
#[derive(Debug, Clone)]
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
    /// The owner's token epoch when the key was made.
    #[serde(skip)]
    pub epoch: i64,
}

/// An API key to store.
#[derive(Debug, Clone)]
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
}

/// A stored key with its digest, for authentication.
#[derive(Debug, Clone)]
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
    /// The owner's token epoch when the session began.
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
