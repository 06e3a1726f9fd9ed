//! `/v1/users` administration (ManageUsers).

use crate::wire;
use actix_web::{HttpResponse, web};
use offgrid_auth::AccountInput;
use offgrid_domain::user::{UserPatch, UserQuery};
use offgrid_domain::{Role, UserId};
use serde::Deserialize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::routes::Paging;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Part of a username, display name or e-mail (also `q`).
    #[serde(default, alias = "q")]
    search: Option<String>,
    /// Only users with this role.
    #[serde(default)]
    #[param(value_type = Option<crate::wire::RoleSchema>)]
    role: Option<Role>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default = "crate::routes::default_limit")]
    limit: i64,
    /// Users to skip.
    #[serde(default)]
    offset: i64,
}

/// `GET /v1/users?search=&role=&limit=&offset=`.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, description = "A page of users", body = crate::wire::UserPage)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let (limit, offset) = Paging::checked(q.limit, q.offset)?;
    let auth = state.auth.clone();
    let page = crate::trace::block(move || {
        auth.repos().users.list(&UserQuery {
            search: q.search,
            role: q.role,
            limit,
            offset,
        })
    })
    .await?
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(wire::UserPage::from(page)))
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    username: String,
    password: String,
    #[serde(default = "default_role")]
    #[schema(value_type = crate::wire::RoleSchema, default = "user")]
    role: Role,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    /// Also create a first API key (default true, as the guide says).
    #[serde(default = "default_true")]
    create_api_key: bool,
}

fn default_role() -> Role {
    Role::User
}

/// `POST /v1/users`: returns `{user, api_key}`; the key is shown once.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateBody,
    responses((status = 201, description = "The account and its first key", body = crate::wire::CreatedUser)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    let issuer = crate::routes::keys::authenticated(&caller)?;
    let (user, key) = crate::trace::block(move || {
        auth.create_user(
            AccountInput {
                username: b.username,
                password: b.password,
                email: b.email,
                display_name: b.display_name,
                role: b.role,
            },
            b.create_api_key
                .then_some(offgrid_auth::KeyIssuer::Caller(&issuer)),
            &actor,
        )
    })
    .await??;
    Ok(HttpResponse::Created().json(wire::CreatedUser {
        user,
        api_key: key.map(|k| wire::ApiKeyInfo::new(&k.key, Some(&k.secret))),
    }))
}

fn user_id(path: &str) -> UserId {
    UserId::from_string(path)
}

/// `GET /v1/users/{id}`.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = crate::wire::UserSchema)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path);
    let auth = state.auth.clone();
    let user = crate::trace::block(move || auth.repos().users.get(&id))
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchBody {
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::RoleSchema>)]
    role: Option<Role>,
    #[serde(default)]
    display_name: Option<String>,
    /// null or empty removes the e-mail.
    #[serde(default, deserialize_with = "crate::wire::present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /v1/users/{id}`: role, display name, e-mail, disabled.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", request_body = PatchBody,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The changed user", body = crate::wire::UserSchema)))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let id = user_id(&path);
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    let patch = UserPatch {
        role: b.role,
        display_name: b.display_name,
        email: b.email.map(|e| e.filter(|s| !s.trim().is_empty())),
        disabled: b.disabled,
    };
    let user = crate::trace::block(move || auth.update_user(&id, patch, &actor)).await??;
    Ok(HttpResponse::Ok().json(user))
}

/// `DELETE /v1/users/{id}` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteQuery {
    /// A User or Admin who inherits the deleted user's chat sessions and
    /// presets; without it they are deleted.
    #[serde(default)]
    transfer_to: Option<String>,
}

/// `DELETE /v1/users/{id}?transfer_to={user_id}`: the user, their keys and
/// logins, every share they held or gave, and their chat sessions and
/// presets, which `transfer_to` inherits instead.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id"), DeleteQuery),
    responses((status = 200, description = "Deleted", body = crate::wire::Deleted)))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path);
    let heir = query.into_inner().transfer_to.map(UserId::from_string);
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    let deleted = id.clone();
    crate::trace::block(move || auth.delete_user(&id, heir.as_ref(), &actor)).await??;
    Ok(HttpResponse::Ok().json(wire::Deleted::new("user", deleted.to_string())))
}

/// `password` may also be sent as `new_password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    #[serde(alias = "new_password")]
    password: String,
}

/// `POST /v1/users/{id}/reset-password`: every session and key of the user
/// ends.
#[utoipa::path(post, path = "/v1/users/{id}/reset-password", tag = "users", request_body = ResetBody,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Reset", body = crate::wire::Success)))]
pub(crate) async fn reset_password(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path);
    let password = body.into_inner().password;
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    crate::trace::block(move || auth.reset_password(&id, &password, &actor)).await??;
    Ok(HttpResponse::Ok().json(wire::Success::DONE))
}
