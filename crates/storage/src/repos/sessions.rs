//! `SessionRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::repo::SessionRepository;
use offgrid_domain::user::{LoginSession, User};
use offgrid_domain::{RepoError, Scope, SessionId, Timestamp, UserId};

use crate::db::Database;
use crate::repos::UserRow;
use crate::schema::{user_sessions, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_sessions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct SessionRow {
    id: String,
    user_id: String,
    epoch: i64,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
    client_addr: Option<String>,
    user_agent: Option<String>,
    revoked_at: Option<i64>,
}

impl From<SessionRow> for LoginSession {
    fn from(r: SessionRow) -> Self {
        LoginSession {
            id: SessionId::from_string(r.id),
            user_id: UserId::from_string(r.user_id),
            created_at: Timestamp(r.created_at),
            expires_at: Timestamp(r.expires_at),
            last_seen_at: Timestamp(r.last_seen_at),
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            revoked_at: r.revoked_at.map(Timestamp),
            epoch: r.epoch,
        }
    }
}

impl SessionRepository for Database {
    fn create(&self, session: LoginSession) -> Result<LoginSession, RepoError> {
        self.write(|conn| {
            // Inside the write transaction, so no epoch bump can come
            // between this check and the insert.
            let epoch: i64 = users::table
                .find(session.user_id.as_str())
                .select(users::token_epoch)
                .get_result(conn)?;
            if epoch != session.epoch {
                return Err(RepoError::StaleEpoch.into());
            }
            // Keep the table bounded: the user's expired sessions go.
            diesel::delete(
                user_sessions::table
                    .filter(user_sessions::user_id.eq(session.user_id.as_str()))
                    .filter(user_sessions::expires_at.le(session.created_at.0)),
            )
            .execute(conn)?;
            diesel::insert_into(user_sessions::table)
                .values((
                    user_sessions::id.eq(session.id.as_str()),
                    user_sessions::user_id.eq(session.user_id.as_str()),
                    user_sessions::epoch.eq(session.epoch),
                    user_sessions::created_at.eq(session.created_at.0),
                    user_sessions::expires_at.eq(session.expires_at.0),
                    user_sessions::last_seen_at.eq(session.last_seen_at.0),
                    user_sessions::client_addr.eq(&session.client_addr),
                    user_sessions::user_agent.eq(&session.user_agent),
                ))
                .execute(conn)?;
            Ok(session)
        })
    }

    fn find(&self, id: &SessionId) -> Result<Option<(LoginSession, User)>, RepoError> {
        let found = self.read(|conn| {
            user_sessions::table
                .inner_join(users::table)
                .filter(user_sessions::id.eq(id.as_str()))
                .select((SessionRow::as_select(), UserRow::as_select()))
                .get_result::<(SessionRow, UserRow)>(conn)
                .optional()
        })?;
        found
            .map(|(s, u)| Ok((s.into(), u.into_user()?)))
            .transpose()
    }

    fn revoke(&self, scope: &Scope, id: &SessionId, now: Timestamp) -> Result<(), RepoError> {
        self.write(|conn| {
            let mut q = diesel::update(user_sessions::table)
                .filter(user_sessions::id.eq(id.as_str()))
                .into_boxed();
            if let Some(owner) = scope.owner() {
                q = q.filter(user_sessions::user_id.eq(owner.as_str()));
            }
            let n = q
                .set(user_sessions::revoked_at.eq(Some(now.0)))
                .execute(conn)?;
            if n == 0 {
                return Err(RepoError::NotFound.into());
            }
            Ok(())
        })
    }

    fn list(
        &self,
        scope: &Scope,
        owner: &UserId,
        now: Timestamp,
    ) -> Result<Vec<LoginSession>, RepoError> {
        if !scope.allows(owner) {
            return Err(RepoError::NotFound);
        }
        let rows = self.read(|conn| {
            user_sessions::table
                .inner_join(users::table)
                .filter(user_sessions::user_id.eq(owner.as_str()))
                .filter(user_sessions::revoked_at.is_null())
                .filter(user_sessions::expires_at.gt(now.0))
                .filter(user_sessions::epoch.eq(users::token_epoch))
                .order(user_sessions::created_at.desc())
                .select(SessionRow::as_select())
                .load(conn)
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    fn touch(&self, id: &SessionId, now: Timestamp) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::update(user_sessions::table.find(id.as_str()))
                .set(user_sessions::last_seen_at.eq(now.0))
                .execute(conn)?;
            Ok(())
        })
    }
}
