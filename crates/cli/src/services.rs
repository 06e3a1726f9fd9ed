//! Opening OffGrid's services from the settings: the one way the server,
//! `offgrid users` and `offgrid-admin` reach the database and the account
//! service.

use offgrid_auth::{AuthConfig, AuthError, AuthService, ServerSecret};
use offgrid_config::Settings;
use offgrid_domain::RepoError;
use offgrid_domain::user::{Page, User, UserQuery};
use offgrid_storage::{Database, StorageError};
use offgrid_workspace::quota::QuotaDefaults;
use offgrid_workspace::{Workspace, WorkspaceConfig};

/// Why the services could not be opened. Its text is the cause's.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory or the database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The server secret or the account service.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The open database and the services on it.
pub struct Services {
    /// The migrated database.
    pub db: Database,
    /// The account service over the database's repositories.
    pub auth: AuthService,
    /// The workspace service over them.
    pub workspace: Workspace,
}

/// The account service's settings, from the user's settings.
pub fn auth_config(settings: &Settings) -> AuthConfig {
    AuthConfig::from_settings(
        settings.bcrypt_cost,
        settings.session_ttl_hours,
        settings.remember_me_days,
    )
    .with_session_idle_timeout_minutes(settings.session_idle_timeout_minutes)
    .with_adopt_existing_data(settings.adopt_existing_data)
}

/// Opens the database in the data directory (created private to this
/// user, also made private on an existing install) without migrating it.
pub fn open_database(settings: &Settings) -> Result<Database, StorageError> {
    offgrid_storage::make_private_dir(&settings.home)?;
    Database::open(&settings.database_path())
}

impl Services {
    /// [`Services::open_with`] the settings' own [`auth_config`].
    pub fn open(settings: &Settings) -> Result<Self, OpenError> {
        Self::open_with(settings, auth_config(settings))
    }

    /// Opens and migrates the database, loads (or creates) the server
    /// secret, kept readable by this user only, and builds the account
    /// service. Blocking: it computes one bcrypt hash.
    pub fn open_with(settings: &Settings, config: AuthConfig) -> Result<Self, OpenError> {
        let db = open_database(settings)?;
        let applied = db.migrate()?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied database migrations");
        }
        let secret_path = settings.home.join("secret.key");
        offgrid_storage::restrict_to_owner(&secret_path)?;
        let secret = ServerSecret::load_or_create(&secret_path)?;
        let auth = AuthService::new(db.repositories(), &secret, config)?;
        let workspace = Workspace::new(
            &db.repositories(),
            WorkspaceConfig {
                admin_can_read_chats: settings.admin_can_read_chats,
                quotas: QuotaDefaults {
                    admin: limits(settings.quota_admin),
                    user: limits(settings.quota_user),
                    viewer: limits(settings.quota_viewer),
                    guest: limits(settings.quota_guest),
                },
            },
        );
        Ok(Services {
            db,
            auth,
            workspace,
        })
    }

    /// The accounts matching `query`: what `offgrid users` and
    /// `offgrid-admin users list` show.
    pub fn list_users(&self, query: &UserQuery) -> Result<Page<User>, RepoError> {
        self.auth.repos().users.list(query)
    }
}

/// A role's quota from the settings, as the workspace takes it.
fn limits(q: offgrid_config::RoleQuota) -> offgrid_domain::quota::QuotaLimits {
    offgrid_domain::quota::QuotaLimits {
        requests_per_minute: q.requests_per_minute,
        tokens_per_day: q.tokens_per_day,
        max_concurrent: q.max_concurrent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_twice_sees_one_database_and_one_secret() {
        let home = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::defaults(home.path().join("data"));
        settings.bcrypt_cost = 4;
        let first = Services::open(&settings).expect("open");
        let all = UserQuery {
            search: None,
            role: None,
            limit: 10,
            offset: 0,
        };
        assert_eq!(first.list_users(&all).expect("list").total, 0);
        let secret = std::fs::read(settings.home.join("secret.key")).expect("secret");
        let second = Services::open(&settings).expect("open again");
        assert_eq!(second.list_users(&all).expect("list").total, 0);
        assert_eq!(
            std::fs::read(settings.home.join("secret.key")).expect("secret"),
            secret
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| {
                std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
            };
            assert_eq!(mode(&settings.home), 0o700);
            assert_eq!(mode(&settings.home.join("secret.key")), 0o600);
        }
    }
}
