//! Opening the database, migrations and backups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use offgrid_domain::RepoError;

use crate::error::{StorageError, pool_err, repo_err};

/// Every migration in the repository's `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

// Lookups use `get_result`, not `first`: diesel's `first()` binds `LIMIT ?`,
// and SQLite re-prepares a statement on every bind of a LIMIT parameter
// (measured: 44% of server CPU in `sqlite3Reprepare`). Unique-key lookups
// need no LIMIT.

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT_MS: u32 = 10_000;

pub(crate) type Conn = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Per-connection settings, applied to every connection the pool opens.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The migration's directory name, e.g. `2026-11-22-000001_create_users`.
    pub name: String,
    /// Whether it is applied to this database.
    pub applied: bool,
}

/// A pooled SQLite database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

/// Internal error type for transactions: a domain refusal or a diesel error.
pub(crate) enum TxError {
    Repo(RepoError),
    Diesel(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Diesel(e)
    }
}

impl From<RepoError> for TxError {
    fn from(e: RepoError) -> Self {
        TxError::Repo(e)
    }
}

impl From<TxError> for RepoError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Repo(r) => r,
            TxError::Diesel(d) => repo_err(d),
        }
    }
}

impl Database {
    /// Opens (creating if needed) the database file and its directory. Does
    /// not migrate: call [`Database::migrate`]. A directory it creates is
    /// 0700; the database file and its `-wal`/`-shm` are made 0600 (an
    /// existing directory is left alone: see [`crate::make_private_dir`]).
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let open_err = |reason: String| StorageError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            crate::files::make_private_dir(dir).map_err(|e| open_err(e.to_string()))?;
        }
        crate::files::make_private_file(path).map_err(|e| open_err(e.to_string()))?;
        crate::files::make_sidecars_private(path).map_err(|e| open_err(e.to_string()))?;
        let url = path
            .to_str()
            .ok_or_else(|| open_err("path is not valid UTF-8".to_owned()))?;
        let manager = ConnectionManager::<SqliteConnection>::new(url);
        let pool = Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_secs(30))
            // A local SQLite connection cannot go stale; skip the `SELECT 1`
            // r2d2 would run on every checkout.
            .test_on_check_out(false)
            .connection_customizer(Box::new(Pragmas))
            .build(manager)
            .map_err(|e| open_err(e.to_string()))?;
        let db = Database {
            pool,
            path: path.to_owned(),
        };
        let mut conn = db.pool.get().map_err(|e| open_err(e.to_string()))?;
        // WAL is a property of the file; setting it once is enough.
        conn.batch_execute("PRAGMA journal_mode = WAL;")
            .map_err(|e| open_err(e.to_string()))?;
        Ok(db)
    }

    /// Every repository on this database, as trait objects.
    pub fn repositories(&self) -> offgrid_domain::repo::Repositories {
        let me = std::sync::Arc::new(self.clone());
        offgrid_domain::repo::Repositories {
            users: me.clone(),
            api_keys: me.clone(),
            sessions: me.clone(),
            throttle: me.clone(),
            audit: me.clone(),
            usage: me.clone(),
            chats: me.clone(),
            grants: me.clone(),
            presets: me.clone(),
            quotas: me.clone(),
            invitations: me.clone(),
            collections: me.clone(),
            benchmarks: me,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies pending migrations; returns the names applied now.
    pub fn migrate(&self) -> Result<Vec<String>, StorageError> {
        let mut conn = self.pool.get()?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    }

    /// Reverts every migration (tests and disaster recovery only).
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, StorageError> {
        let mut conn = self.pool.get()?;
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(reverted.iter().map(|v| v.to_string()).collect())
    }

    /// Every known migration and whether it is applied, oldest first.
    pub fn migration_status(&self) -> Result<Vec<MigrationStatus>, StorageError> {
        use diesel::migration::MigrationSource;
        let mut conn = self.pool.get()?;
        let applied = conn
            .applied_migrations()
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        let known = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(known
            .iter()
            .map(|m| MigrationStatus {
                name: m.name().to_string(),
                applied: applied.contains(&m.name().version()),
            })
            .collect())
    }

    /// Writes a consistent copy of the live database to `dest` with
    /// `VACUUM INTO`, which reads one snapshot and never blocks writers for
    /// long. `dest` must not exist; it is created 0600 before anything is
    /// written to it.
    pub fn backup(&self, dest: &Path) -> Result<(), StorageError> {
        let exists =
            || StorageError::Io(format!("backup target {} already exists", dest.display()));
        if dest.exists() {
            return Err(exists());
        }
        let target = dest
            .to_str()
            .ok_or_else(|| StorageError::Io("backup path is not valid UTF-8".to_owned()))?;
        // VACUUM INTO accepts an empty file: create it private first (and
        // atomically, so a file or link put there meanwhile is refused).
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(dest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e) => {
                return Err(StorageError::Io(format!(
                    "cannot create backup {}: {e}",
                    dest.display()
                )));
            }
        }
        let written = self
            .pool
            .get()
            .map_err(StorageError::from)
            .and_then(|mut conn| {
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(target)
                    .execute(&mut conn)
                    .map_err(StorageError::from)
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(dest);
            return Err(e);
        }
        Ok(())
    }

    /// Reads a PRAGMA's value as text (diagnostics and tests): one of
    /// `journal_mode`, `foreign_keys`, `synchronous`, `busy_timeout`.
    pub fn pragma(&self, name: &str) -> Result<String, StorageError> {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let column = match name {
            "journal_mode" | "foreign_keys" | "synchronous" => name,
            "busy_timeout" => "timeout",
            _ => return Err(StorageError::Query(format!("unsupported pragma {name:?}"))),
        };
        let mut conn = self.pool.get()?;
        let rows: Vec<Value> = diesel::sql_query(format!(
            "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
        ))
        .load(&mut conn)?;
        rows.into_iter()
            .next()
            .map(|v| v.value)
            .ok_or_else(|| StorageError::Query(format!("pragma {name} returned nothing")))
    }

    pub(crate) fn conn(&self) -> Result<Conn, RepoError> {
        self.pool.get().map_err(pool_err)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken
    /// up front, so concurrent writers wait on the busy timeout instead of
    /// failing when a read lock cannot be upgraded.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, TxError>,
    ) -> Result<T, RepoError> {
        let mut conn = self.conn()?;
        conn.immediate_transaction(f).map_err(RepoError::from)
    }

    /// Runs a read.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
    ) -> Result<T, RepoError> {
        let mut conn = self.conn()?;
        f(&mut conn).map_err(repo_err)
    }
}
