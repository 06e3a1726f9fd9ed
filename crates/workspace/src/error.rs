//! What can go wrong in the workspace, as callers must answer it.

use offgrid_domain::RepoError;

/// A workspace operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No such resource, or one the caller may not see: the same answer,
    /// so ids do not leak.
    #[error("not found")]
    NotFound,
    /// The named user does not exist (or is the built-in system user).
    #[error("no such user")]
    UserNotFound,
    /// The caller sees the resource but may not do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The server cannot take this now (a full indexing queue); try later.
    #[error("{0}")]
    Overloaded(&'static str),
    /// The database is busy.
    #[error("database is busy, try again")]
    Busy,
    /// The storage layer failed; its error is the source.
    #[error("the workspace store failed")]
    Storage(#[source] RepoError),
}

impl WorkspaceError {
    /// An invalid `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        WorkspaceError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<RepoError> for WorkspaceError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => WorkspaceError::NotFound,
            RepoError::Busy => WorkspaceError::Busy,
            e => WorkspaceError::Storage(e),
        }
    }
}
