//! Who is making a request.

use serde::Serialize;

use crate::{ApiKeyId, Role, SessionId, UserId};

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// Single-user mode: the local owner, no credential needed.
    LocalOwner,
    /// Nothing was presented and guests are allowed.
    Anonymous,
    /// A login token (bearer header or cookie).
    Session {
        /// The session (token `jti`).
        session_id: SessionId,
        /// Whether the token arrived in a cookie (then CSRF checks apply).
        from_cookie: bool,
    },
    /// A per-user API key.
    ApiKey {
        /// The key row.
        key_id: ApiKeyId,
    },
}

/// The authenticated (or anonymous) caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The acting user; `None` for an anonymous guest.
    pub user_id: Option<UserId>,
    /// The role the request acts with.
    pub role: Role,
    /// How the caller authenticated.
    pub credential: Credential,
}

impl Principal {
    /// The owner in single-user mode: the system user with every permission.
    pub fn local_owner() -> Self {
        Principal {
            user_id: Some(UserId::system()),
            role: Role::Admin,
            credential: Credential::LocalOwner,
        }
    }

    /// An unauthenticated guest.
    pub fn anonymous_guest() -> Self {
        Principal {
            user_id: None,
            role: Role::Guest,
            credential: Credential::Anonymous,
        }
    }

    /// Whether a real credential (token or key) backs this principal, or it
    /// is the single-user owner.
    pub fn is_authenticated(&self) -> bool {
        !matches!(self.credential, Credential::Anonymous)
    }

    /// The session this request belongs to, if it used a login token.
    pub fn session_id(&self) -> Option<&SessionId> {
        match &self.credential {
            Credential::Session { session_id, .. } => Some(session_id),
            _ => None,
        }
    }
}
