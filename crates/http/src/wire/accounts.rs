//! Bodies of the account routes: setup, login, the caller, users, API keys,
//! the audit log and token usage.
//!
//! Users and audit entries go out as the domain serializes them
//! (`offgrid_domain::user::User`, `offgrid_domain::audit::AuditEvent`);
//! the `*Schema` types here only describe them in the OpenAPI document,
//! and a test in `routes::openapi` checks that each description names
//! exactly the fields the domain type sends.

use offgrid_domain::audit::AuditEvent;
use offgrid_domain::usage::UsageTotal;
use offgrid_domain::user::{ApiKey as StoredKey, Page, User};
use offgrid_domain::{ApiKeyId, Permission, Role, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `"list"`, the `object` of every list answer.
pub const LIST: &str = "list";

/// A user's role, from most to least privileged (`offgrid_domain::Role`).
#[derive(Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
pub enum RoleSchema {
    /// Everything.
    Admin,
    /// Chat, models, RAG, own sessions.
    User,
    /// Chat and view models.
    Viewer,
    /// Chat only.
    Guest,
}

/// A permission a caller holds (`offgrid_domain::Permission`).
#[derive(Serialize, ToSchema)]
#[schema(as = Permission)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PermissionSchema {
    Chat,
    ViewModels,
    ManageModels,
    UseRag,
    OwnSessions,
    AllSessions,
    ManageUsers,
    ViewMetrics,
    ViewAudit,
    ManageOwnAccount,
}

/// A user account (`offgrid_domain::user::User` as serialized).
#[derive(ToSchema)]
#[schema(as = User)]
#[allow(dead_code)]
pub struct UserSchema {
    id: String,
    username: String,
    email: Option<String>,
    display_name: String,
    role: RoleSchema,
    disabled: bool,
    /// Present (true) only on the built-in system user.
    #[schema(required = false)]
    system: bool,
    /// RFC 3339.
    created_at: String,
    updated_at: String,
    last_login_at: Option<String>,
}

/// An audit log entry (`offgrid_domain::audit::AuditEvent` as serialized).
#[derive(ToSchema)]
#[schema(as = AuditEvent)]
#[allow(dead_code)]
pub struct AuditEventSchema {
    id: i64,
    at: String,
    actor_id: Option<String>,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    client_addr: Option<String>,
    /// Extra detail as JSON text.
    details: Option<String>,
    repeats: i64,
    last_at: Option<String>,
}

/// `POST /v1/auth/setup`: the new administrator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = SetupResult)]
pub struct SetupResponse {
    /// The account.
    #[schema(value_type = UserSchema)]
    pub user: User,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = LoginResult)]
pub struct LoginResponse {
    /// A PASETO v4.local token for `Authorization: Bearer`.
    pub token: String,
    /// `bearer`.
    pub token_type: String,
    /// When the token stops working (RFC 3339).
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    /// The account.
    #[schema(value_type = UserSchema)]
    pub user: User,
}

/// The server's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Accounts, roles and API keys.
    MultiUser,
    /// One owner, no login.
    SingleUser,
}

impl Mode {
    /// The mode for the `multi_user_mode` setting.
    pub fn of(multi_user: bool) -> Self {
        if multi_user {
            Mode::MultiUser
        } else {
            Mode::SingleUser
        }
    }
}

/// `GET /v1/auth/me`: the caller; `user` is null for the anonymous guest
/// and the single-user owner.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The account, if the caller has one.
    #[schema(value_type = Option<UserSchema>)]
    pub user: Option<User>,
    /// Whether the caller presented a credential.
    pub authenticated: bool,
    /// The role the caller acts with.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// What the caller may do.
    #[schema(value_type = Vec<PermissionSchema>)]
    pub permissions: Vec<Permission>,
    /// The server's mode.
    pub mode: Mode,
}

/// `{"success": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Success {
    /// Always true: failures are error answers.
    pub success: bool,
}

impl Success {
    /// The answer of an action that worked.
    pub const DONE: Success = Success { success: true };
}

/// A deletion: `{id, object, deleted: true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// What was deleted.
    pub id: String,
    /// Its kind (`user`, `model`).
    pub object: String,
    /// Always true.
    pub deleted: bool,
}

impl Deleted {
    /// `object` `id` is gone.
    pub fn new(object: &str, id: impl Into<String>) -> Self {
        Deleted {
            id: id.into(),
            object: object.to_owned(),
            deleted: true,
        }
    }
}

/// An API key; `key` (the secret) only in the answer that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyInfo {
    /// Key id.
    #[schema(value_type = String)]
    pub id: ApiKeyId,
    /// `api_key`.
    #[schema(pattern = "^api_key$")]
    pub object: String,
    /// Name given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Expiry, if any.
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    /// Last successful use.
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
    /// Whether it is revoked.
    pub revoked: bool,
    /// Whether requests made with it may create more keys.
    pub can_create_keys: bool,
    /// The secret, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub key: Option<String>,
}

impl ApiKeyInfo {
    /// A stored key as sent; `secret` only right after creation.
    pub fn new(key: &StoredKey, secret: Option<&str>) -> Self {
        ApiKeyInfo {
            id: key.id.clone(),
            object: "api_key".to_owned(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
            revoked: key.revoked_at.is_some(),
            can_create_keys: key.can_create_keys,
            key: secret.map(str::to_owned),
        }
    }
}

/// `{"object": "list", "data": [ApiKey]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// `list`.
    pub object: String,
    /// The keys.
    pub data: Vec<ApiKeyInfo>,
}

/// `POST /v1/users`: the account and, unless declined, its first API key
/// (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    /// The account.
    #[schema(value_type = UserSchema)]
    pub user: User,
    /// Its first key, secret included.
    pub api_key: Option<ApiKeyInfo>,
}

/// A page type: one page of a listing, with the total over all pages.
macro_rules! page {
    ($(#[$doc:meta])* $name:ident, $row:ty, $schema:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// `list`.
            pub object: String,
            /// The rows.
            #[schema(value_type = Vec<$schema>)]
            pub data: Vec<$row>,
            /// Rows matching the filter, over all pages.
            pub total: i64,
            /// Page size used.
            pub limit: i64,
            /// Rows skipped.
            pub offset: i64,
        }

        impl From<Page<$row>> for $name {
            fn from(page: Page<$row>) -> Self {
                $name {
                    object: LIST.to_owned(),
                    data: page.data,
                    total: page.total,
                    limit: page.limit,
                    offset: page.offset,
                }
            }
        }
    };
}

page!(
    /// A page of users.
    UserPage,
    User,
    UserSchema
);
page!(
    /// A page of audit entries, newest first.
    AuditPage,
    AuditEvent,
    AuditEventSchema
);

/// Token totals for one (user, model) pair
/// (`offgrid_domain::usage::UsageTotal` as serialized).
#[derive(ToSchema)]
#[schema(as = UsageTotal)]
#[allow(dead_code)]
pub struct UsageTotalSchema {
    /// Null: anonymous guests.
    user_id: Option<String>,
    model: String,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageList {
    /// `list`.
    pub object: String,
    /// Totals per user and model.
    #[schema(value_type = Vec<UsageTotalSchema>)]
    pub data: Vec<UsageTotal>,
    /// The window, in days.
    pub days: u32,
}
