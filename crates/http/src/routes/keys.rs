//! API keys: the caller's own (`/v1/users/me/api-keys`) and, for admins,
//! anyone's (`/v1/users/{id}/api-keys`). Every call passes a `Scope`, so the
//! storage layer filters by owner.

use actix_web::{HttpResponse, web};
use offgrid_auth::{Authenticated, KeyIssuer, KeyRequest};
use offgrid_domain::{ApiKeyId, Scope, Timestamp, UserId};
use serde::Deserialize;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    /// RFC 3339 expiry.
    #[serde(default)]
    expires_at: Option<String>,
    /// Or: days from now.
    #[serde(default)]
    expires_in_days: Option<u32>,
    /// Whether requests made with the new key may create more keys.
    #[serde(default)]
    can_create_keys: bool,
}

impl CreateBody {
    fn expiry(&self) -> Result<Option<Timestamp>, ApiError> {
        match (&self.expires_at, self.expires_in_days) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                ErrorCode::InvalidValue,
                "give expires_at or expires_in_days, not both",
            )),
            (Some(text), None) => Timestamp::parse_rfc3339(text).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidValue,
                    "expires_at must be an RFC 3339 time like 2030-01-01T00:00:00Z",
                )
            }),
            (None, Some(days)) => {
                offgrid_auth::key_expiry_in_days(days)
                    .map(Some)
                    .ok_or_else(|| {
                        let days = offgrid_auth::KEY_EXPIRY_DAYS;
                        ApiError::bad_request(
                            ErrorCode::InvalidValue,
                            format!(
                                "expires_in_days must be between {} and {}",
                                days.start(),
                                days.end()
                            ),
                        )
                    })
            }
            (None, None) => Ok(None),
        }
    }
}

/// The caller with the account read while its credential was checked, as
/// the auth service wants it for issuing keys.
pub(crate) fn authenticated(caller: &Caller) -> Result<Authenticated, ApiError> {
    let user = caller
        .user
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("sign in to manage API keys"))?;
    Ok(Authenticated {
        principal: caller.principal.clone(),
        user,
    })
}

fn own_id(caller: &Caller) -> Result<UserId, ApiError> {
    caller
        .principal
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("sign in to manage API keys"))
}

/// The scope an admin acts in on `target`'s keys, after checking the user
/// exists (404 otherwise).
async fn admin_scope(
    state: &AppState,
    caller: &Caller,
    target: &UserId,
) -> Result<Scope, ApiError> {
    let auth = state.auth.clone();
    let id = target.clone();
    crate::trace::block(move || auth.repos().users.get(&id))
        .await?
        .map_err(ApiError::from)?;
    Scope::everything_for(&caller.principal).ok_or_else(|| ApiError::not_found("not found"))
}

async fn list(state: &AppState, scope: Scope, owner: UserId) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let keys = crate::trace::block(move || auth.list_api_keys(&scope, &owner)).await??;
    Ok(HttpResponse::Ok().json(wire::ApiKeyList {
        object: wire::LIST.to_owned(),
        data: keys
            .iter()
            .map(|k| wire::ApiKeyInfo::new(k, None))
            .collect(),
    }))
}

async fn create(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    owner: UserId,
    body: CreateBody,
    actor: offgrid_auth::Actor,
) -> Result<HttpResponse, ApiError> {
    let expires_at = body.expiry()?;
    let issuer = authenticated(caller)?;
    let auth = state.auth.clone();
    let request = KeyRequest {
        owner,
        name: body.name,
        expires_at,
        can_create_keys: body.can_create_keys,
    };
    let issued = crate::trace::block(move || {
        auth.create_api_key(KeyIssuer::Caller(&issuer), &scope, request, &actor)
    })
    .await??;
    Ok(HttpResponse::Created().json(wire::ApiKeyInfo::new(&issued.key, Some(&issued.secret))))
}

async fn revoke(
    state: &AppState,
    scope: Scope,
    owner: UserId,
    key: ApiKeyId,
    actor: offgrid_auth::Actor,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let revoked =
        crate::trace::block(move || auth.revoke_api_key(&scope, &owner, &key, &actor)).await??;
    Ok(HttpResponse::Ok().json(wire::ApiKeyInfo::new(&revoked, None)))
}

/// `GET /v1/users/me/api-keys`.
#[utoipa::path(get, path = "/v1/users/me/api-keys", tag = "keys",
    responses((status = 200, description = "The caller's keys", body = crate::wire::ApiKeyList)))]
pub(crate) async fn list_mine(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let me = own_id(&caller)?;
    list(&state, Scope::owned_by(me.clone()), me).await
}

/// `POST /v1/users/me/api-keys`.
#[utoipa::path(post, path = "/v1/users/me/api-keys", tag = "keys", request_body = CreateBody,
    responses((status = 201, description = "The new key, secret included (shown once)", body = crate::wire::ApiKeyInfo)))]
pub(crate) async fn create_mine(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let me = own_id(&caller)?;
    let actor = client.actor(Some(&caller));
    create(
        &state,
        &caller,
        Scope::owned_by(me.clone()),
        me,
        body.into_inner(),
        actor,
    )
    .await
}

/// `DELETE /v1/users/me/api-keys/{key_id}`.
#[utoipa::path(delete, path = "/v1/users/me/api-keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The revoked key", body = crate::wire::ApiKeyInfo)))]
pub(crate) async fn revoke_mine(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let me = own_id(&caller)?;
    let actor = client.actor(Some(&caller));
    let key = ApiKeyId::from_string(path.into_inner());
    revoke(&state, Scope::owned_by(me.clone()), me, key, actor).await
}

/// `GET /v1/users/{id}/api-keys`.
#[utoipa::path(get, path = "/v1/users/{id}/api-keys", tag = "keys", params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user's keys", body = crate::wire::ApiKeyList)))]
pub(crate) async fn list_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let owner = UserId::from_string(path.into_inner());
    let scope = admin_scope(&state, &caller, &owner).await?;
    list(&state, scope, owner).await
}

/// `POST /v1/users/{id}/api-keys`.
#[utoipa::path(post, path = "/v1/users/{id}/api-keys", tag = "keys", request_body = CreateBody,
    params(("id" = String, Path, description = "User id")),
    responses((status = 201, description = "The new key, secret included (shown once)", body = crate::wire::ApiKeyInfo)))]
pub(crate) async fn create_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let owner = UserId::from_string(path.into_inner());
    let scope = admin_scope(&state, &caller, &owner).await?;
    let actor = client.actor(Some(&caller));
    create(&state, &caller, scope, owner, body.into_inner(), actor).await
}

/// `DELETE /v1/users/{id}/api-keys/{key_id}`.
#[utoipa::path(delete, path = "/v1/users/{id}/api-keys/{key_id}", tag = "keys",
    params(("id" = String, Path, description = "User id"), ("key_id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The revoked key", body = crate::wire::ApiKeyInfo)))]
pub(crate) async fn revoke_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (owner, key) = path.into_inner();
    let owner = UserId::from_string(owner);
    let scope = admin_scope(&state, &caller, &owner).await?;
    let actor = client.actor(Some(&caller));
    revoke(&state, scope, owner, ApiKeyId::from_string(key), actor).await
}
