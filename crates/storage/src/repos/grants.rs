//! `GrantRepository` on SQLite: one table of shares for every kind of
//! resource. Who may change a share is the service's check; this only
//! stores it.

use diesel::prelude::*;
use offgrid_domain::repo::GrantRepository;
use offgrid_domain::workspace::{Grant, GrantLevel, OwnerRef, ResourceKind};
use offgrid_domain::{RepoError, Timestamp, UserId};

use crate::db::Database;
use crate::schema::{chat_sessions, grants, rag_collections, users};

type Row = (String, String, String, i64);

fn grant((user_id, username, level, created_at): Row) -> Grant {
    Grant {
        user: OwnerRef {
            id: UserId::from_string(user_id),
            username,
        },
        // The column's CHECK allows only the three names.
        level: level.parse().unwrap_or(GrantLevel::Read),
        created_at: Timestamp(created_at),
    }
}

/// The shares of one resource with their users' names, oldest first.
fn rows(
    conn: &mut SqliteConnection,
    kind: ResourceKind,
    resource: &str,
    user: Option<&UserId>,
) -> QueryResult<Vec<Grant>> {
    let mut q = grants::table
        .inner_join(users::table)
        .filter(grants::resource_type.eq(kind.as_str()))
        .filter(grants::resource_id.eq(resource.to_owned()))
        .select((
            grants::user_id,
            users::username,
            grants::level,
            grants::created_at,
        ))
        .order((grants::created_at.asc(), grants::user_id.asc()))
        .into_boxed();
    if let Some(user) = user {
        q = q.filter(grants::user_id.eq(user.as_str().to_owned()));
    }
    Ok(q.load::<Row>(conn)?.into_iter().map(grant).collect())
}

impl GrantRepository for Database {
    fn grant(
        &self,
        kind: ResourceKind,
        resource: &str,
        user: &UserId,
        level: GrantLevel,
        now: Timestamp,
    ) -> Result<(Grant, bool), RepoError> {
        self.write(|conn| {
            // The resource must still exist, in this transaction: a share
            // inserted after its session's delete trigger ran would outlive it.
            let exists = match kind {
                ResourceKind::Session => {
                    diesel::select(diesel::dsl::exists(chat_sessions::table.find(resource)))
                        .get_result::<bool>(conn)?
                }
                ResourceKind::Collection => {
                    diesel::select(diesel::dsl::exists(rag_collections::table.find(resource)))
                        .get_result::<bool>(conn)?
                }
            };
            if !exists {
                return Err(RepoError::NotFound.into());
            }
            let key = (kind.as_str(), resource, user.as_str());
            let changed = diesel::update(grants::table.find(key))
                .set((
                    grants::level.eq(level.as_str()),
                    grants::created_at.eq(now.0),
                ))
                .execute(conn)?;
            if changed == 0 {
                diesel::insert_into(grants::table)
                    .values((
                        grants::resource_type.eq(kind.as_str()),
                        grants::resource_id.eq(resource),
                        grants::user_id.eq(user.as_str()),
                        grants::level.eq(level.as_str()),
                        grants::created_at.eq(now.0),
                    ))
                    .execute(conn)?;
            }
            let stored = rows(conn, kind, resource, Some(user))?
                .pop()
                .ok_or(RepoError::NotFound)?;
            Ok((stored, changed == 0))
        })
    }

    fn grants(&self, kind: ResourceKind, resource: &str) -> Result<Vec<Grant>, RepoError> {
        self.read(|conn| rows(conn, kind, resource, None))
    }

    fn revoke(&self, kind: ResourceKind, resource: &str, user: &UserId) -> Result<bool, RepoError> {
        self.write(|conn| {
            let gone = diesel::delete(grants::table.find((kind.as_str(), resource, user.as_str())))
                .execute(conn)?;
            Ok(gone > 0)
        })
    }
}
