//! Quotas: the caller's own (`GET /v1/users/me/quota`, guests included,
//! counted per network) and a user's for administrators
//! (`GET|PUT /v1/users/{id}/quota`, `POST /v1/users/{id}/quota/reset`).

use actix_web::{HttpResponse, web};
use offgrid_domain::UserId;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;

/// `GET /v1/users/me/quota`.
#[utoipa::path(get, path = "/v1/users/me/quota", tag = "users",
    responses((status = 200, description = "The caller's limits, what they used and when it resets", body = wire::Quota)))]
pub(crate) async fn me(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
) -> Result<HttpResponse, ApiError> {
    let subject = crate::routes::openai::quota_subject(&caller, &client);
    let (ws, principal) = (state.workspace.clone(), caller.principal.clone());
    let status = crate::trace::block(move || ws.quota_status(&principal, &subject)).await??;
    Ok(HttpResponse::Ok().json(wire::Quota::from(status)))
}

fn answer(
    (status, overrides): (
        offgrid_workspace::quota::QuotaStatus,
        offgrid_domain::quota::QuotaOverrides,
    ),
) -> HttpResponse {
    HttpResponse::Ok().json(wire::Quota {
        overrides: Some(overrides.into()),
        ..wire::Quota::from(status)
    })
}

/// `GET /v1/users/{id}/quota`.
#[utoipa::path(get, path = "/v1/users/{id}/quota", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user's limits, overrides and usage", body = wire::Quota)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let found = crate::trace::block(move || ws.user_quota(&actor, &id)).await??;
    Ok(answer(found))
}

/// `PUT /v1/users/{id}/quota`: replaces the user's overrides (a field left
/// out: the role's default; `null`: unlimited).
#[utoipa::path(put, path = "/v1/users/{id}/quota", tag = "users", request_body = wire::QuotaOverrides,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user's quota with the new overrides", body = wire::Quota)))]
pub(crate) async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::QuotaOverrides>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::from_string(path.into_inner());
    let overrides = body.into_inner().into();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let changed = crate::trace::block(move || ws.set_user_quota(&actor, &id, &overrides)).await??;
    Ok(answer(changed))
}

/// `POST /v1/users/{id}/quota/reset`: clears the user's counters.
#[utoipa::path(post, path = "/v1/users/{id}/quota/reset", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Counters cleared")))]
pub(crate) async fn reset(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.reset_user_quota(&actor, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
