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
    /// A new password is one of the most common passwords.
    #[error("password: is one of the most common passwords and easy to guess; choose another")]
    CommonPassword,
    /// The current password given to change-password was wrong.
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    /// A setup code was given and is not the server's.
    #[error("the setup code is not the one printed at server start-up")]
    InvalidSetupCode,
    /// An invitation code is wrong, used, revoked or expired: one answer
    /// for all four, so a code reveals nothing about itself.
    #[error(
        "this invitation code is not valid: it may be mistyped, used, revoked or expired; ask an administrator for a new one"
    )]
    InvalidInvitation,
    /// A used invitation cannot be revoked.
    #[error(
        "this invitation has been used: it made an account, which can be disabled or deleted instead"
    )]
    InvitationUsed,
    /// Logout was asked with an API key, which is not a login session.
    #[error(
        "an API key is not a login session: nothing was revoked (revoke the key with DELETE /v1/users/me/api-keys/{{id}})"
    )]
    NotASession,
    /// An API key without `can_create_keys` asked for a new key.
    #[error(
        "this API key cannot create API keys: sign in, or use a key created with can_create_keys"
    )]
    KeyCannotCreateKeys,
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
    /// The storage layer failed; its error is the source.
    #[error("the account store failed")]
    Storage(#[source] RepoError),
    /// Anything else unexpected (a crypto or key-file failure), described.
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
            // A credential tied to an epoch that has since been bumped.
            RepoError::StaleEpoch => AuthError::Unauthenticated,
            RepoError::Busy => AuthError::Busy,
            e @ RepoError::Internal(_) => AuthError::Storage(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_storage_failure_keeps_its_cause_as_the_source() {
        let e = AuthError::from(RepoError::Internal("disk I/O error".to_owned()));
        assert_eq!(e.to_string(), "the account store failed");
        let source = e.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("storage failure: disk I/O error"));
        // Expected failures are not wrapped.
        assert_eq!(AuthError::from(RepoError::NotFound), AuthError::NotFound);
        assert_eq!(AuthError::from(RepoError::Busy), AuthError::Busy);
    }
}
