//! `InvitationRepository` on SQLite. Accepting is one write transaction:
//! the pending row is found, the account inserted and the row marked used
//! with a guarded `UPDATE` whose count must be one, so one code makes one
//! account however many try at once.

use diesel::prelude::*;
use offgrid_domain::invitation::{Invitation, Inviter, NewInvitation};
use offgrid_domain::repo::InvitationRepository;
use offgrid_domain::user::{NewUser, User};
use offgrid_domain::workspace::{Cursor, CursorPage, OwnerRef};
use offgrid_domain::{InvitationId, RepoError, Role, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::repos::insert_user;
use crate::schema::{invitations, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct InvitationRow {
    id: String,
    role: String,
    note: Option<String>,
    created_by: Option<String>,
    created_by_name: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    used_by: Option<String>,
    revoked_at: Option<i64>,
}

/// A row with the username of the account made with it.
type Joined = (InvitationRow, Option<String>);

fn role(row: &InvitationRow) -> Result<Role, RepoError> {
    row.role
        .parse::<Role>()
        .map_err(|e| RepoError::Internal(format!("invitation {}: {e}", row.id)))
}

fn invitation((row, used_by_name): Joined) -> Result<Invitation, RepoError> {
    let role = role(&row)?;
    Ok(Invitation {
        id: InvitationId::from_string(row.id),
        role,
        note: row.note,
        created_by: Inviter {
            id: row.created_by.map(UserId::from_string),
            name: row.created_by_name,
        },
        created_at: Timestamp(row.created_at),
        expires_at: Timestamp(row.expires_at),
        used_at: row.used_at.map(Timestamp),
        used_by: row
            .used_by
            .zip(used_by_name)
            .map(|(id, username)| OwnerRef {
                id: UserId::from_string(id),
                username,
            }),
        revoked_at: row.revoked_at.map(Timestamp),
    })
}

/// Invitations with the username of whoever used them.
macro_rules! joined {
    () => {
        invitations::table
            .left_join(users::table.on(invitations::used_by.eq(users::id.nullable())))
            .select((InvitationRow::as_select(), users::username.nullable()))
    };
}

fn load(conn: &mut SqliteConnection, id: &str) -> Result<Invitation, TxError> {
    let row = joined!()
        .filter(invitations::id.eq(id))
        .get_result::<Joined>(conn)?;
    Ok(invitation(row)?)
}

/// The pending invitation with this code digest at `now`, if any.
fn pending(
    conn: &mut SqliteConnection,
    code_hash: &[u8],
    now: Timestamp,
) -> QueryResult<Option<Joined>> {
    joined!()
        .filter(invitations::code_hash.eq(code_hash))
        .filter(invitations::used_at.is_null())
        .filter(invitations::revoked_at.is_null())
        .filter(invitations::expires_at.gt(now.0))
        .get_result::<Joined>(conn)
        .optional()
}

impl InvitationRepository for Database {
    fn create(&self, new: NewInvitation) -> Result<Invitation, RepoError> {
        let id = InvitationId::generate();
        self.write(|conn| {
            diesel::insert_into(invitations::table)
                .values((
                    invitations::id.eq(id.as_str()),
                    invitations::code_hash.eq(&new.code_hash),
                    invitations::role.eq(new.role.as_str()),
                    invitations::note.eq(&new.note),
                    invitations::created_by.eq(new.created_by.id.as_ref().map(UserId::as_str)),
                    invitations::created_by_name.eq(&new.created_by.name),
                    invitations::created_at.eq(new.created_at.0),
                    invitations::expires_at.eq(new.expires_at.0),
                ))
                .execute(conn)?;
            load(conn, id.as_str())
        })
    }

    fn get(&self, id: &InvitationId) -> Result<Invitation, RepoError> {
        let row = self.read(|conn| {
            joined!()
                .filter(invitations::id.eq(id.as_str()))
                .get_result::<Joined>(conn)
        })?;
        invitation(row)
    }

    fn list(
        &self,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Invitation>, RepoError> {
        let limit = limit.clamp(1, 1000);
        let rows = self.read(|conn| {
            let mut q = joined!().into_boxed();
            if let Some(Cursor { updated_at, id }) = cursor {
                q = q.filter(
                    invitations::created_at
                        .lt(*updated_at)
                        .or(invitations::created_at
                            .eq(*updated_at)
                            .and(invitations::id.lt(id.clone()))),
                );
            }
            q.order((invitations::created_at.desc(), invitations::id.desc()))
                .limit(limit + 1)
                .load::<Joined>(conn)
        })?;
        let mut data = rows
            .into_iter()
            .map(invitation)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if data.len() as i64 > limit {
            data.truncate(limit as usize);
            data.last().map(|i| Cursor {
                updated_at: i.created_at.0,
                id: i.id.as_str().to_owned(),
            })
        } else {
            None
        };
        Ok(CursorPage { data, next_cursor })
    }

    fn find_pending(
        &self,
        code_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<Invitation>, RepoError> {
        self.read(|conn| pending(conn, code_hash, now))?
            .map(invitation)
            .transpose()
    }

    fn accept(
        &self,
        code_hash: &[u8],
        user: NewUser,
        now: Timestamp,
    ) -> Result<(Invitation, User), RepoError> {
        self.write(|conn| {
            let (row, _) = pending(conn, code_hash, now)?.ok_or(RepoError::NotFound)?;
            let user = insert_user(
                conn,
                NewUser {
                    role: role(&row)?,
                    ..user
                },
                now,
            )?;
            // The write lock is held, so the row is still pending; the
            // guard and the count make that a checked fact, not a belief.
            let marked = diesel::update(
                invitations::table
                    .filter(invitations::id.eq(&row.id))
                    .filter(invitations::used_at.is_null())
                    .filter(invitations::revoked_at.is_null())
                    .filter(invitations::expires_at.gt(now.0)),
            )
            .set((
                invitations::used_at.eq(now.0),
                invitations::used_by.eq(user.id.as_str()),
            ))
            .execute(conn)?;
            if marked != 1 {
                return Err(RepoError::NotFound.into());
            }
            Ok((load(conn, &row.id)?, user))
        })
    }

    fn revoke(&self, id: &InvitationId, now: Timestamp) -> Result<(Invitation, bool), RepoError> {
        self.write(|conn| {
            let current = load(conn, id.as_str())?;
            if current.used_at.is_some() {
                return Err(RepoError::Conflict("used".to_owned()).into());
            }
            if current.revoked_at.is_some() {
                return Ok((current, false));
            }
            diesel::update(invitations::table.find(id.as_str()))
                .set(invitations::revoked_at.eq(now.0))
                .execute(conn)?;
            Ok((load(conn, id.as_str())?, true))
        })
    }
}
