//! The auth crate's error enum.
//!
//! Every credential failure (unknown user, wrong password, expired, revoked
//! or malformed token, disabled account) is the single `InvalidCredentials`
//! or `Unauthenticated` variant, so callers cannot leak which one it was.

use offgrid_domain::RepoError;

/// What went wrong in an auth operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Login failed: unknown user, wrong password or disabled account.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A token or key was missing, malformed, expired or revoked.
    #[error("invalid or expired credentials")]
    Unauthenticated,
    /// Too many failed logins; try again after the given seconds.
    #[error("too many failed login attempts; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the next attempt is judged.
        retry_after_secs: i64,
    },
    /// Input that breaks a rule (password length, username form…).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The current password given to change-password was wrong.
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    /// First-admin setup was already done.
    #[error("setup is already complete: an administrator exists")]
    SetupDone,
    /// The target does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness clash; names the field.
    #[error("{0} is already taken")]
    Conflict(String),
    /// Would leave no active administrator.
    #[error("the last active administrator cannot be deleted, demoted or disabled")]
    LastAdmin,
    /// Not allowed on the built-in system user.
    #[error("the built-in system user cannot log in, be promoted or be deleted")]
    SystemUser,
    /// Not allowed on one's own account through this route.
    #[error("{0}")]
    SelfChange(&'static str),
    /// The database is busy.
    #[error("database is busy, try again")]
    Busy,
    /// Anything unexpected (storage failure, crypto failure).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RepoError> for AuthError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => AuthError::NotFound,
            RepoError::Conflict(field) => AuthError::Conflict(field),
            RepoError::LastAdmin => AuthError::LastAdmin,
            RepoError::SystemUser => AuthError::SystemUser,
            RepoError::Busy => AuthError::Busy,
            RepoError::Internal(msg) => AuthError::Internal(msg),
        }
    }
}
