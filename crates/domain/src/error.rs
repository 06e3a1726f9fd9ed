//! The error every repository method returns.
//!
//! Storage maps its own failures (pool, SQL, constraint violations) onto these
//! variants so callers never see a diesel type.

/// What went wrong in a repository call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepoError {
    /// The row does not exist, or exists but is outside the caller's scope.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; the string names the field.
    #[error("{0} already exists")]
    Conflict(String),
    /// The change would leave the server without an active administrator.
    #[error("the last active administrator cannot be removed, demoted or disabled")]
    LastAdmin,
    /// The change is not allowed on the built-in system user.
    #[error("the built-in system user cannot be changed that way")]
    SystemUser,
    /// The user's token epoch is no longer the one the caller verified (a
    /// password change, reset, role change or disabling happened in
    /// between), so a credential tied to that epoch is not stored.
    #[error("the account changed since its credentials were checked")]
    StaleEpoch,
    /// The database is busy beyond the configured timeout.
    #[error("database is busy, try again")]
    Busy,
    /// Anything else: a broken database, a failed migration, an IO error.
    #[error("storage failure: {0}")]
    Internal(String),
}
