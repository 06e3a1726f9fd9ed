//! Storage errors and the mapping of diesel errors onto domain `RepoError`s.

use offgrid_domain::RepoError;

/// Failures opening, migrating or backing up the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The pool could not open a connection.
    #[error("cannot open database {path}: {reason}")]
    Open {
        /// Database file.
        path: String,
        /// Cause.
        reason: String,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(String),
    /// A filesystem problem.
    #[error("{0}")]
    Io(String),
}

impl From<diesel::result::Error> for StorageError {
    fn from(e: diesel::result::Error) -> Self {
        StorageError::Query(e.to_string())
    }
}

impl From<r2d2_error::PoolError> for StorageError {
    fn from(e: r2d2_error::PoolError) -> Self {
        StorageError::Query(e.to_string())
    }
}

pub(crate) mod r2d2_error {
    pub type PoolError = diesel::r2d2::PoolError;
}

/// Maps a diesel error to the domain's error.
pub(crate) fn repo_err(e: diesel::result::Error) -> RepoError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::NotFound => RepoError::NotFound,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            // "UNIQUE constraint failed: users.username" -> "username"
            let field = info
                .message()
                .rsplit('.')
                .next()
                .unwrap_or("value")
                .to_owned();
            RepoError::Conflict(field)
        }
        Error::DatabaseError(_, info)
            if info.message().contains("database is locked")
                || info.message().contains("database is busy") =>
        {
            RepoError::Busy
        }
        other => RepoError::Internal(other.to_string()),
    }
}

/// Maps a pool error (no connection within the timeout) to the domain's error.
pub(crate) fn pool_err(e: diesel::r2d2::PoolError) -> RepoError {
    RepoError::Internal(format!("no database connection: {e}"))
}
