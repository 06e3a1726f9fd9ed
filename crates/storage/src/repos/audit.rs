//! `AuditRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::audit::{AuditEvent, AuditQuery, NewAuditEvent};
use offgrid_domain::repo::AuditRepository;
use offgrid_domain::user::Page;
use offgrid_domain::{RepoError, Timestamp, UserId};

use crate::db::Database;
use crate::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct AuditRow {
    id: i64,
    at: i64,
    actor_id: Option<String>,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    client_addr: Option<String>,
    details: Option<String>,
    repeats: i64,
    last_at: Option<i64>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            id: r.id,
            at: Timestamp(r.at),
            actor_id: r.actor_id.map(UserId::from_string),
            actor: r.actor,
            action: r.action,
            target: r.target,
            client_addr: r.client_addr,
            details: r.details,
            repeats: r.repeats,
            last_at: r.last_at.map(Timestamp),
        }
    }
}

/// Stores `e`, seen `repeats` times (the latest at `e.at` when more than
/// once).
fn insert(conn: &mut SqliteConnection, e: &NewAuditEvent, repeats: i64) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(e.at.0),
            audit_log::actor_id.eq(e.actor_id.as_ref().map(|u| u.as_str())),
            audit_log::actor.eq(&e.actor),
            audit_log::action.eq(&e.action),
            audit_log::target.eq(&e.target),
            audit_log::client_addr.eq(&e.client_addr),
            audit_log::details.eq(&e.details),
            audit_log::repeats.eq(repeats),
            audit_log::last_at.eq((repeats > 1).then_some(e.at.0)),
        ))
        .execute(conn)?;
    Ok(())
}

impl AuditRepository for Database {
    fn append(&self, e: NewAuditEvent) -> Result<(), RepoError> {
        self.write(|conn| Ok(insert(conn, &e, 1)?))
    }

    fn append_coalesced(
        &self,
        e: NewAuditEvent,
        since: Timestamp,
        repeats: u32,
    ) -> Result<(), RepoError> {
        let repeats = i64::from(repeats.max(1));
        self.write(|conn| {
            let mut q = audit_log::table
                .filter(audit_log::action.eq(&e.action))
                .filter(audit_log::at.ge(since.0))
                .into_boxed();
            q = match &e.target {
                Some(t) => q.filter(audit_log::target.eq(t.clone())),
                None => q.filter(audit_log::target.is_null()),
            };
            q = match &e.client_addr {
                Some(a) => q.filter(audit_log::client_addr.eq(a.clone())),
                None => q.filter(audit_log::client_addr.is_null()),
            };
            let existing: Option<i64> =
                q.select(diesel::dsl::max(audit_log::id)).get_result(conn)?;
            match existing {
                Some(id) => {
                    diesel::update(audit_log::table.find(id))
                        .set((
                            audit_log::repeats.eq(audit_log::repeats + repeats),
                            audit_log::last_at.eq(Some(e.at.0)),
                        ))
                        .execute(conn)?;
                }
                None => insert(conn, &e, repeats)?,
            }
            Ok(())
        })
    }

    fn prune(&self, before: Timestamp) -> Result<u64, RepoError> {
        self.write(|conn| {
            let n = diesel::delete(audit_log::table.filter(audit_log::at.lt(before.0)))
                .execute(conn)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn list(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, RepoError> {
        let filtered = || {
            let mut q = audit_log::table.into_boxed();
            if let Some(action) = query.action.as_deref().filter(|a| !a.is_empty()) {
                if action.ends_with('.') {
                    let escaped: String = action
                        .chars()
                        .flat_map(|c| {
                            let esc = matches!(c, '%' | '_' | '\\').then_some('\\');
                            esc.into_iter().chain(std::iter::once(c))
                        })
                        .collect();
                    q = q.filter(audit_log::action.like(format!("{escaped}%")).escape('\\'));
                } else {
                    q = q.filter(audit_log::action.eq(action.to_owned()));
                }
            }
            if let Some(actor) = &query.actor_id {
                q = q.filter(audit_log::actor_id.eq(actor.as_str().to_owned()));
            }
            if let Some(target) = &query.target {
                q = q.filter(audit_log::target.eq(target.clone()));
            }
            if let Some(since) = query.since {
                q = q.filter(audit_log::at.ge(since.0));
            }
            if let Some(after) = query.after_id {
                q = q.filter(audit_log::id.gt(after));
            }
            q
        };
        let (rows, total) = self.read(|conn| {
            let total: i64 = filtered().count().get_result(conn)?;
            let rows = filtered()
                .order(audit_log::id.desc())
                .limit(query.limit)
                .offset(query.offset)
                .select(AuditRow::as_select())
                .load(conn)?;
            Ok((rows, total))
        })?;
        Ok(Page {
            data: rows.into_iter().map(Into::into).collect(),
            total,
            limit: query.limit,
            offset: query.offset,
        })
    }
}
