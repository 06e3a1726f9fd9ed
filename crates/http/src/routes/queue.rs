//! The generation queue: `GET /v1/queue` (the caller's queued and running
//! generations; administrators see everyone's, with the user) and
//! `DELETE /v1/queue/{id}` (cancel: the caller's own, or any for an
//! administrator; anything else is 404). A cancelled request's client gets
//! the end of its answer at once, with `finish_reason: "cancelled"`.

use actix_web::{HttpResponse, web};
use offgrid_domain::{Permission, UserId};
use offgrid_inference::{JobInfo, JobState};
use offgrid_policy::authorize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire;

/// The board's requests the caller may see: their own, or all for an
/// administrator.
fn visible(state: &AppState, caller: &Caller, client: &Client) -> (bool, Vec<JobInfo>) {
    let all = authorize(&caller.principal, Permission::ManageUsers).is_ok();
    let me = crate::routes::openai::requester(caller, client).key;
    let jobs = state
        .models
        .queue()
        .into_iter()
        .filter(|j| all || j.user == me)
        .collect();
    (all, jobs)
}

/// `GET /v1/queue`.
#[utoipa::path(get, path = "/v1/queue", tag = "inference",
    responses((status = 200, description = "Queued and running generations, oldest first", body = wire::QueueList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
) -> Result<HttpResponse, ApiError> {
    let (all, jobs) = visible(&state, &caller, &client);
    let users = state.auth.repos().users.clone();
    let data = crate::trace::block(move || {
        jobs.into_iter()
            .map(|j| {
                let user = all.then(|| match j.user.strip_prefix("user:") {
                    Some(id) => {
                        let id = UserId::from_string(id);
                        let username = users
                            .get(&id)
                            .map_or_else(|_| "(deleted)".to_owned(), |u| u.username);
                        wire::QueueUser {
                            id: Some(id.as_str().to_owned()),
                            username,
                        }
                    }
                    None => wire::QueueUser {
                        id: None,
                        username: j.user.clone(),
                    },
                });
                wire::QueueEntry {
                    created_at: offgrid_domain::Timestamp(
                        j.created_at
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                    )
                    .to_rfc3339(),
                    id: j.id,
                    model: j.model,
                    state: match j.state {
                        JobState::Queued => wire::QueueState::Queued,
                        JobState::Running => wire::QueueState::Running,
                    },
                    position: j.position,
                    generated_tokens: j.generated_tokens,
                    waiting_for: j.waiting_for_memory.then(|| "memory".to_owned()),
                    user,
                }
            })
            .collect()
    })
    .await?;
    Ok(HttpResponse::Ok().json(wire::QueueList {
        object: wire::LIST.to_owned(),
        data,
    }))
}

/// `DELETE /v1/queue/{id}`.
#[utoipa::path(delete, path = "/v1/queue/{id}", tag = "inference",
    params(("id" = String, Path, description = "The generation's id")),
    responses((status = 204, description = "Cancelled; its client's answer ends with finish_reason cancelled")))]
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    // Guests share their network's key: one guest must not end another's,
    // so none is theirs to cancel (the route's access is the role's; this
    // is about ownership, hence 404).
    if caller.principal.user_id.is_none() {
        return Err(ApiError::not_found(
            "no such generation of yours: guests cannot cancel (closing the connection stops a guest's generation)",
        ));
    }
    let (_, jobs) = visible(&state, &caller, &client);
    if !jobs.iter().any(|j| j.id == id) || !state.models.cancel(&id) {
        return Err(ApiError::not_found("no such generation in the queue"));
    }
    Ok(HttpResponse::NoContent().finish())
}
