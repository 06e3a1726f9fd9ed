//! Invitations: `/v1/invitations` for administrators (ManageUsers) to make,
//! list and revoke them, and the public `POST /v1/auth/accept-invite`,
//! which creates the invited account and signs it in. Each handler is one
//! call of the account service on the blocking pool.

use actix_web::{HttpResponse, web};
use offgrid_auth::{AcceptInvitation, InvitationRequest};
use offgrid_domain::InvitationId;
use serde::Deserialize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;

/// `GET /v1/invitations` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Page size, 1 to 100 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST /v1/invitations`: the code is in this answer only.
#[utoipa::path(post, path = "/v1/invitations", tag = "users", request_body = wire::CreateInvitationRequest,
    responses((status = 201, description = "The invitation and its code (shown once)", body = wire::CreatedInvitation)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<wire::CreateInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let (auth, actor) = (state.auth.clone(), client.actor(Some(&caller)));
    let request = InvitationRequest {
        role: b.role,
        expires_in_hours: b.expires_in_hours,
        note: b.note,
    };
    let issued = crate::trace::block(move || auth.create_invitation(request, &actor)).await??;
    Ok(HttpResponse::Created().json(wire::CreatedInvitation {
        path: format!("/invite/{}", issued.code),
        id: issued.invitation.id,
        code: issued.code,
        expires_at: issued.invitation.expires_at,
    }))
}

/// `GET /v1/invitations?limit=&cursor=`: every invitation with its status,
/// never a code.
#[utoipa::path(get, path = "/v1/invitations", tag = "users", params(ListQuery),
    responses((status = 200, description = "Invitations, newest first", body = wire::InvitationList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let auth = state.auth.clone();
    let page =
        crate::trace::block(move || auth.list_invitations(q.limit, q.cursor.as_deref())).await??;
    let now = offgrid_auth::service::now();
    Ok(HttpResponse::Ok().json(wire::InvitationList {
        object: wire::LIST.to_owned(),
        data: page
            .data
            .into_iter()
            .map(|i| wire::InvitationInfo::new(i, now))
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// `DELETE /v1/invitations/{id}`: the code stops working; 409
/// `invitation_used` once it made an account.
#[utoipa::path(delete, path = "/v1/invitations/{id}", tag = "users",
    params(("id" = String, Path, description = "Invitation id")),
    responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = InvitationId::from_string(path.into_inner());
    let (auth, actor) = (state.auth.clone(), client.actor(Some(&caller)));
    crate::trace::block(move || auth.revoke_invitation(&id, &actor)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/auth/accept-invite`: creates the invited account and answers
/// like `POST /v1/auth/login`. A wrong, used, revoked or expired code is
/// one answer, 403 `invalid_invitation`; attempts are throttled per client
/// address (429).
#[utoipa::path(post, path = "/v1/auth/accept-invite", tag = "auth", request_body = wire::AcceptInvitationRequest,
    responses((status = 200, description = "The new account, signed in", body = wire::LoginResponse)))]
pub(crate) async fn accept(
    state: web::Data<AppState>,
    client: Client,
    body: JsonObject<wire::AcceptInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let auth = state.auth.clone();
    let request = AcceptInvitation {
        code: b.code,
        username: b.username,
        password: b.password,
        email: b.email,
        client_addr: client.addr.clone(),
        user_agent: client.user_agent.clone(),
    };
    let outcome = crate::trace::block(move || auth.accept_invitation(&request)).await??;
    Ok(crate::routes::auth::signed_in(&state.settings, outcome))
}
