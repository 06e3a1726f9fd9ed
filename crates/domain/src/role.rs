//! Roles and permissions. Which role holds which permission is decided in the
//! policy crate; here they are only names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role, from most to least privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full access: users, models, RAG, every session.
    Admin,
    /// Standard access: chat, models, RAG, own sessions.
    User,
    /// Read-only: chat and view models.
    Viewer,
    /// Minimal: chat only. Unauthenticated requests act as Guest when guests
    /// are allowed.
    Guest,
}

impl Role {
    /// Every role, for exhaustive tests and help texts.
    pub const ALL: [Role; 4] = [Role::Admin, Role::User, Role::Viewer, Role::Guest];

    /// The lowercase name used in JSON, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Viewer => "viewer",
            Role::Guest => "guest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of `admin`, `user`, `viewer`, `guest`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected one of admin, user, viewer, guest")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "viewer" => Ok(Role::Viewer),
            "guest" => Ok(Role::Guest),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Run chat, completions and embeddings.
    Chat,
    /// List and inspect installed models.
    ViewModels,
    /// Import, remove and configure models.
    ManageModels,
    /// Use RAG collections.
    UseRag,
    /// Create and manage one's own chat sessions.
    OwnSessions,
    /// See and manage every user's chat sessions.
    AllSessions,
    /// Create, change and delete user accounts.
    ManageUsers,
    /// See server metrics.
    ViewMetrics,
    /// Read the audit log.
    ViewAudit,
    /// Manage one's own account: password, API keys.
    ManageOwnAccount,
}

impl Permission {
    /// Every permission, for exhaustive tests.
    pub const ALL: [Permission; 10] = [
        Permission::Chat,
        Permission::ViewModels,
        Permission::ManageModels,
        Permission::UseRag,
        Permission::OwnSessions,
        Permission::AllSessions,
        Permission::ManageUsers,
        Permission::ViewMetrics,
        Permission::ViewAudit,
        Permission::ManageOwnAccount,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("ADMIN".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
