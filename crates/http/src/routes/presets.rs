//! Presets: `/v1/presets` and `/v1/presets/{id}`. Each handler is one call
//! of the workspace service on the blocking pool.

use actix_web::{HttpResponse, web};
use offgrid_domain::PresetId;
use serde::Deserialize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;

/// `GET /v1/presets` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Page size, 1 to 100 (default 50).
    #[serde(default)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST /v1/presets`.
#[utoipa::path(post, path = "/v1/presets", tag = "sessions", request_body = wire::PresetRequest,
    responses((status = 201, description = "The new preset", body = wire::Preset)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<wire::PresetRequest>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner().into();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let preset = crate::trace::block(move || ws.create_preset(&actor, &fields)).await??;
    Ok(HttpResponse::Created().json(wire::Preset::from(preset)))
}

/// `GET /v1/presets`: the caller's own and the public ones.
#[utoipa::path(get, path = "/v1/presets", tag = "sessions", params(ListQuery),
    responses((status = 200, description = "Presets, most recently changed first", body = wire::PresetList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let page = crate::trace::block(move || ws.list_presets(&actor, q.limit, q.cursor.as_deref()))
        .await??;
    Ok(HttpResponse::Ok().json(wire::PresetList {
        object: wire::LIST.to_owned(),
        data: page.data.into_iter().map(wire::Preset::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// `GET /v1/presets/{id}`.
#[utoipa::path(get, path = "/v1/presets/{id}", tag = "sessions", params(("id" = String, Path, description = "Preset id")),
    responses((status = 200, description = "The preset", body = wire::Preset)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PresetId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let preset = crate::trace::block(move || ws.get_preset(&actor, &id)).await??;
    Ok(HttpResponse::Ok().json(wire::Preset::from(preset)))
}

/// `PATCH /v1/presets/{id}`: replaces every field (the owner or an Admin).
#[utoipa::path(patch, path = "/v1/presets/{id}", tag = "sessions", params(("id" = String, Path, description = "Preset id")),
    request_body = wire::PresetRequest,
    responses((status = 200, description = "The changed preset", body = wire::Preset)))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::PresetRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = PresetId::from_string(path.into_inner());
    let fields = body.into_inner().into();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let preset = crate::trace::block(move || ws.update_preset(&actor, &id, &fields)).await??;
    Ok(HttpResponse::Ok().json(wire::Preset::from(preset)))
}

/// `DELETE /v1/presets/{id}` (the owner or an Admin).
#[utoipa::path(delete, path = "/v1/presets/{id}", tag = "sessions", params(("id" = String, Path, description = "Preset id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PresetId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.delete_preset(&actor, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
