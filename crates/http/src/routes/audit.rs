//! `GET /v1/audit` (ViewAudit): the audit log, newest first, with filters.

use actix_web::{HttpResponse, web};
use offgrid_domain::audit::AuditQuery;
use offgrid_domain::{Timestamp, UserId};
use serde::Deserialize;

use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::routes::Paging;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct Query {
    /// Exact action, or a family ending in `.` (`login.`).
    #[serde(default)]
    action: Option<String>,
    /// Actor user id.
    #[serde(default)]
    actor: Option<String>,
    /// Target id or name.
    #[serde(default)]
    target: Option<String>,
    /// RFC 3339 lower bound.
    #[serde(default)]
    since: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default = "crate::routes::default_limit")]
    limit: i64,
    /// Entries to skip.
    #[serde(default)]
    offset: i64,
}

/// `GET /v1/audit?action=&actor=&target=&since=&limit=&offset=`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(Query),
    responses((status = 200, description = "Audit entries, newest first", body = crate::wire::AuditPage)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let (limit, offset) = Paging::checked(q.limit, q.offset)?;
    let since = match q.since.as_deref() {
        Some(text) => Some(Timestamp::parse_rfc3339(text).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidQuery, "since must be an RFC 3339 time")
        })?),
        None => None,
    };
    let query = AuditQuery {
        action: q.action,
        actor_id: q.actor.map(UserId::from_string),
        target: q.target,
        since,
        after_id: None,
        limit,
        offset,
    };
    let auth = state.auth.clone();
    let page = crate::trace::block(move || auth.repos().audit.list(&query))
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(crate::wire::AuditPage::from(page)))
}
