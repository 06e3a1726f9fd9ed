//! `UserRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::repo::UserRepository;
use offgrid_domain::user::{NewUser, Page, User, UserCredentials, UserPatch, UserQuery};
use offgrid_domain::workspace::ResourceKind;
use offgrid_domain::{RepoError, Role, SessionId, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::schema::{
    chat_sessions, grants, invitations, presets, rag_collections, user_sessions, users,
};

/// A `users` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub is_system: bool,
    pub token_epoch: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User, RepoError> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|e| RepoError::Internal(format!("user {}: {e}", self.id)))?;
        Ok(User {
            id: UserId::from_string(self.id),
            username: self.username,
            email: self.email,
            display_name: self.display_name,
            role,
            disabled: self.disabled,
            system: self.is_system,
            token_epoch: self.token_epoch,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            last_login_at: self.last_login_at.map(Timestamp),
        })
    }
}

fn load_user(conn: &mut SqliteConnection, id: &UserId) -> Result<UserRow, TxError> {
    Ok(users::table
        .find(id.as_str())
        .select(UserRow::as_select())
        .get_result(conn)?)
}

/// Active admins other than `except`.
fn other_active_admins(conn: &mut SqliteConnection, except: &str) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::disabled.eq(false))
        .filter(users::is_system.eq(false))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)
}

fn is_active_admin(row: &UserRow) -> bool {
    row.role == Role::Admin.as_str() && !row.disabled && !row.is_system
}

pub(crate) fn insert_user(
    conn: &mut SqliteConnection,
    user: NewUser,
    now: Timestamp,
) -> Result<User, TxError> {
    // Check the username first so a clash on both fields names the username.
    let taken: i64 = users::table
        .filter(users::username.eq(&user.username))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Err(RepoError::Conflict("username".to_owned()).into());
    }
    let id = UserId::generate();
    let display_name = user.display_name.unwrap_or_else(|| user.username.clone());
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id.as_str()),
            users::username.eq(&user.username),
            users::email.eq(&user.email),
            users::display_name.eq(&display_name),
            users::password_hash.eq(&user.password_hash),
            users::role.eq(user.role.as_str()),
            users::disabled.eq(false),
            users::is_system.eq(false),
            users::token_epoch.eq(0),
            users::created_at.eq(now.0),
            users::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(load_user(conn, &id)?.into_user()?)
}

/// Escapes LIKE wildcards so a search is a plain substring match.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// An administrator who loses the role (demoted, disabled, deleted) takes
/// their pending invitations with them: none can be used to come back.
fn revoke_pending_invitations(
    conn: &mut SqliteConnection,
    creator: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        invitations::table
            .filter(invitations::created_by.eq(creator))
            .filter(invitations::used_at.is_null())
            .filter(invitations::revoked_at.is_null()),
    )
    .set(invitations::revoked_at.eq(now))
    .execute(conn)
}

impl UserRepository for Database {
    fn create(&self, user: NewUser, now: Timestamp) -> Result<User, RepoError> {
        self.write(|conn| insert_user(conn, user, now))
    }

    fn create_first_admin(
        &self,
        user: NewUser,
        now: Timestamp,
        adopt: bool,
    ) -> Result<User, RepoError> {
        self.write(|conn| {
            if other_active_admins(conn, "")? > 0 {
                return Err(RepoError::Conflict("admin".to_owned()).into());
            }
            let admin = insert_user(
                conn,
                NewUser {
                    role: Role::Admin,
                    ..user
                },
                now,
            )?;
            if adopt {
                let system = UserId::system();
                diesel::update(
                    chat_sessions::table.filter(chat_sessions::owner_id.eq(system.as_str())),
                )
                .set(chat_sessions::owner_id.eq(admin.id.as_str()))
                .execute(conn)?;
                diesel::update(presets::table.filter(presets::owner_id.eq(system.as_str())))
                    .set(presets::owner_id.eq(admin.id.as_str()))
                    .execute(conn)?;
                diesel::update(
                    rag_collections::table.filter(rag_collections::owner_id.eq(system.as_str())),
                )
                .set(rag_collections::owner_id.eq(admin.id.as_str()))
                .execute(conn)?;
            }
            Ok(admin)
        })
    }

    fn get(&self, id: &UserId) -> Result<User, RepoError> {
        self.read(|conn| {
            users::table
                .find(id.as_str())
                .select(UserRow::as_select())
                .get_result(conn)
        })?
        .into_user()
    }

    fn get_by_username(&self, username: &str) -> Result<User, RepoError> {
        self.read(|conn| {
            users::table
                .filter(users::username.eq(username))
                .select(UserRow::as_select())
                .get_result(conn)
        })?
        .into_user()
    }

    fn find_for_login(&self, login: &str) -> Result<Option<UserCredentials>, RepoError> {
        let row = self.read(|conn| {
            users::table
                .filter(users::is_system.eq(false))
                .filter(users::username.eq(login).or(users::email.eq(login)))
                // A username match wins over another account's e-mail.
                .order(users::username.eq(login).desc())
                .select(UserRow::as_select())
                .get_result(conn)
                .optional()
        })?;
        row.map(|r| {
            let password_hash = r.password_hash.clone();
            r.into_user().map(|user| UserCredentials {
                user,
                password_hash,
            })
        })
        .transpose()
    }

    fn list(&self, query: &UserQuery) -> Result<Page<User>, RepoError> {
        let filtered = || {
            let mut q = users::table.filter(users::is_system.eq(false)).into_boxed();
            if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
                let pattern = like_pattern(search);
                q = q.filter(
                    users::username
                        .like(pattern.clone())
                        .escape('\\')
                        .or(users::display_name.like(pattern.clone()).escape('\\'))
                        .or(users::email.like(pattern).escape('\\')),
                );
            }
            if let Some(role) = query.role {
                q = q.filter(users::role.eq(role.as_str()));
            }
            q
        };
        let (rows, total) = self.read(|conn| {
            let total: i64 = filtered().count().get_result(conn)?;
            let rows = filtered()
                .order((users::created_at.asc(), users::username.asc()))
                .limit(query.limit)
                .offset(query.offset)
                .select(UserRow::as_select())
                .load(conn)?;
            Ok((rows, total))
        })?;
        Ok(Page {
            data: rows
                .into_iter()
                .map(UserRow::into_user)
                .collect::<Result<_, _>>()?,
            total,
            limit: query.limit,
            offset: query.offset,
        })
    }

    fn update(&self, id: &UserId, patch: &UserPatch, now: Timestamp) -> Result<User, RepoError> {
        self.write(|conn| {
            let row = load_user(conn, id)?;
            let role_changes = patch.role.is_some_and(|r| r.as_str() != row.role);
            let disabling = patch.disabled == Some(true) && !row.disabled;
            if row.is_system && (patch.role.is_some() || patch.disabled.is_some()) {
                return Err(RepoError::SystemUser.into());
            }
            let loses_admin = is_active_admin(&row)
                && (disabling || patch.role.is_some_and(|r| r != Role::Admin));
            if loses_admin && other_active_admins(conn, &row.id)? == 0 {
                return Err(RepoError::LastAdmin.into());
            }
            if loses_admin {
                revoke_pending_invitations(conn, &row.id, now.0)?;
            }
            let epoch = if role_changes || disabling {
                row.token_epoch + 1
            } else {
                row.token_epoch
            };
            diesel::update(users::table.find(&row.id))
                .set((
                    users::role.eq(patch.role.map(Role::as_str).unwrap_or(&row.role)),
                    users::display_name
                        .eq(patch.display_name.as_ref().unwrap_or(&row.display_name)),
                    users::email.eq(patch.email.clone().unwrap_or(row.email.clone())),
                    users::disabled.eq(patch.disabled.unwrap_or(row.disabled)),
                    users::token_epoch.eq(epoch),
                    users::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load_user(conn, id)?.into_user()?)
        })
    }

    fn set_password(
        &self,
        id: &UserId,
        password_hash: &str,
        keep: Option<&SessionId>,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.write(|conn| {
            let row = load_user(conn, id)?;
            if row.is_system {
                return Err(RepoError::SystemUser.into());
            }
            let epoch = row.token_epoch + 1;
            diesel::update(users::table.find(&row.id))
                .set((
                    users::password_hash.eq(password_hash),
                    users::token_epoch.eq(epoch),
                    users::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            if let Some(session) = keep {
                diesel::update(
                    user_sessions::table
                        .filter(user_sessions::id.eq(session.as_str()))
                        .filter(user_sessions::user_id.eq(&row.id)),
                )
                .set(user_sessions::epoch.eq(epoch))
                .execute(conn)?;
            }
            Ok(())
        })
    }

    fn delete(&self, id: &UserId, transfer_to: Option<&UserId>) -> Result<(), RepoError> {
        self.write(|conn| {
            let row = load_user(conn, id)?;
            if row.is_system {
                return Err(RepoError::SystemUser.into());
            }
            if is_active_admin(&row) && other_active_admins(conn, &row.id)? == 0 {
                return Err(RepoError::LastAdmin.into());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            revoke_pending_invitations(conn, &row.id, now)?;
            if let Some(to) = transfer_to {
                let heir = load_user(conn, to)?;
                if heir.is_system {
                    return Err(RepoError::SystemUser.into());
                }
                // Checked again here: a role change or disabling may have
                // come since the caller looked.
                let owns = heir.role == Role::User.as_str() || heir.role == Role::Admin.as_str();
                if heir.id == row.id || heir.disabled || !owns {
                    return Err(RepoError::Conflict("transfer_to".to_owned()).into());
                }
                // The shares they gave end; the sessions, collections and
                // presets move.
                let theirs = chat_sessions::table
                    .filter(chat_sessions::owner_id.eq(&row.id))
                    .select(chat_sessions::id);
                diesel::delete(
                    grants::table
                        .filter(grants::resource_type.eq(ResourceKind::Session.as_str()))
                        .filter(grants::resource_id.eq_any(theirs)),
                )
                .execute(conn)?;
                let collections = rag_collections::table
                    .filter(rag_collections::owner_id.eq(&row.id))
                    .select(rag_collections::id);
                diesel::delete(
                    grants::table
                        .filter(grants::resource_type.eq(ResourceKind::Collection.as_str()))
                        .filter(grants::resource_id.eq_any(collections)),
                )
                .execute(conn)?;
                diesel::update(
                    rag_collections::table.filter(rag_collections::owner_id.eq(&row.id)),
                )
                .set(rag_collections::owner_id.eq(&heir.id))
                .execute(conn)?;
                diesel::update(chat_sessions::table.filter(chat_sessions::owner_id.eq(&row.id)))
                    .set(chat_sessions::owner_id.eq(&heir.id))
                    .execute(conn)?;
                diesel::update(presets::table.filter(presets::owner_id.eq(&row.id)))
                    .set(presets::owner_id.eq(&heir.id))
                    .execute(conn)?;
            }
            diesel::delete(users::table.find(&row.id)).execute(conn)?;
            Ok(())
        })
    }

    fn admin_exists(&self) -> Result<bool, RepoError> {
        self.read(|conn| other_active_admins(conn, ""))
            .map(|n| n > 0)
    }

    fn record_login(&self, id: &UserId, now: Timestamp) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::update(users::table.find(id.as_str()))
                .set(users::last_login_at.eq(Some(now.0)))
                .execute(conn)?;
            Ok(())
        })
    }
}
