//! RAG: `/v1/rag/collections` and everything under it (documents,
//! shares), and `/v1/rag/search`. As for sessions, each handler is one
//! call of the workspace service on the blocking pool; the service applies
//! the policy and the repository hides what the caller may not see (404).
//!
//! A document is uploaded as JSON `{name, text}` or as a multipart form
//! with a `file` part, read up to the upload limit (`rag_max_upload_mb`)
//! after the caller's write access was checked, and answered 202 while
//! the indexer works on it.

mod backend;
mod search;
mod upload;

use actix_web::{HttpResponse, web};
use offgrid_domain::{CollectionId, DocumentId, UserId};
use serde::Deserialize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::routes::sessions::{ListQuery, share_list, share_target, shared_response};
use crate::state::AppState;
use crate::wire;

pub(crate) use backend::ModelsBackend;
pub(crate) use search::{__path_search, MAX_QUERY_BYTES, Retrieve, retrieve, search, top_k};
pub(crate) use upload::{__path_upload, upload};

/// `GET …/documents` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 100 (default 50).
    #[serde(default)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST /v1/rag/collections`.
#[utoipa::path(post, path = "/v1/rag/collections", tag = "rag", request_body = wire::CreateCollectionRequest,
    responses((status = 201, description = "The new collection", body = wire::Collection)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<wire::CreateCollectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let view = crate::trace::block(move || {
        ws.create_collection(&actor, &body.name, body.description.as_deref())
    })
    .await??;
    Ok(HttpResponse::Created().json(wire::Collection::from(view)))
}

/// `GET /v1/rag/collections?q=&shared=&all=&limit=&cursor=`.
#[utoipa::path(get, path = "/v1/rag/collections", tag = "rag", params(ListQuery),
    responses((status = 200, description = "Collections, most recently changed first", body = wire::CollectionList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = query.into_inner().into_request();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let page = crate::trace::block(move || ws.list_collections(&actor, &request)).await??;
    Ok(HttpResponse::Ok().json(wire::CollectionList {
        object: wire::LIST.to_owned(),
        data: page.data.into_iter().map(wire::Collection::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// `GET /v1/rag/collections/{id}`.
#[utoipa::path(get, path = "/v1/rag/collections/{id}", tag = "rag", params(("id" = String, Path, description = "Collection id")),
    responses((status = 200, description = "The collection", body = wire::Collection)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let view = crate::trace::block(move || ws.get_collection(&actor, &id)).await??;
    Ok(HttpResponse::Ok().json(wire::Collection::from(view)))
}

/// `PATCH /v1/rag/collections/{id}` (admin access).
#[utoipa::path(patch, path = "/v1/rag/collections/{id}", tag = "rag", params(("id" = String, Path, description = "Collection id")),
    request_body = wire::UpdateCollectionRequest,
    responses((status = 200, description = "The changed collection", body = wire::Collection)))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::UpdateCollectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let body = body.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let view = crate::trace::block(move || {
        ws.update_collection(
            &actor,
            &id,
            body.name.as_deref(),
            body.description.as_deref(),
        )
    })
    .await??;
    Ok(HttpResponse::Ok().json(wire::Collection::from(view)))
}

/// `DELETE /v1/rag/collections/{id}`: the owner or an administrator.
#[utoipa::path(delete, path = "/v1/rag/collections/{id}", tag = "rag", params(("id" = String, Path, description = "Collection id")),
    responses((status = 204, description = "Deleted, with its documents and shares")))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.delete_collection(&actor, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /v1/rag/collections/{id}/documents?limit=&cursor=`.
#[utoipa::path(get, path = "/v1/rag/collections/{id}/documents", tag = "rag",
    params(("id" = String, Path, description = "Collection id"), PageQuery),
    responses((status = 200, description = "Documents, newest first", body = wire::DocumentList)))]
pub(crate) async fn documents(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let PageQuery { limit, cursor } = query.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let page =
        crate::trace::block(move || ws.documents(&actor, &id, limit, cursor.as_deref())).await??;
    Ok(HttpResponse::Ok().json(wire::DocumentList {
        object: wire::LIST.to_owned(),
        data: page.data.into_iter().map(wire::Document::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// `GET /v1/rag/collections/{id}/documents/{document_id}`.
#[utoipa::path(get, path = "/v1/rag/collections/{id}/documents/{document_id}", tag = "rag",
    params(("id" = String, Path, description = "Collection id"), ("document_id" = String, Path, description = "Document id")),
    responses((status = 200, description = "The document", body = wire::Document)))]
pub(crate) async fn document(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, doc) = path.into_inner();
    let (id, doc) = (CollectionId::from_string(id), DocumentId::from_string(doc));
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let d = crate::trace::block(move || ws.document(&actor, &id, &doc)).await??;
    Ok(HttpResponse::Ok().json(wire::Document::from(d)))
}

/// `DELETE /v1/rag/collections/{id}/documents/{document_id}` (write access).
#[utoipa::path(delete, path = "/v1/rag/collections/{id}/documents/{document_id}", tag = "rag",
    params(("id" = String, Path, description = "Collection id"), ("document_id" = String, Path, description = "Document id")),
    responses((status = 204, description = "Removed, with its chunks")))]
pub(crate) async fn delete_document(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, doc) = path.into_inner();
    let (id, doc) = (CollectionId::from_string(id), DocumentId::from_string(doc));
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.delete_document(&actor, &id, &doc)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/rag/collections/{id}/shares`: 201 for a new share, 200 when
/// an existing one changes level.
#[utoipa::path(post, path = "/v1/rag/collections/{id}/shares", tag = "rag", params(("id" = String, Path, description = "Collection id")),
    request_body = wire::ShareRequest,
    responses((status = 201, description = "Shared", body = wire::Share),
        (status = 200, description = "The share's level changed", body = wire::Share)))]
pub(crate) async fn share(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::ShareRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let (target, level) = share_target(body.into_inner())?;
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let shared =
        crate::trace::block(move || ws.share_collection(&actor, &id, &target, level)).await??;
    Ok(shared_response(shared))
}

/// `GET /v1/rag/collections/{id}/shares` (admin access).
#[utoipa::path(get, path = "/v1/rag/collections/{id}/shares", tag = "rag", params(("id" = String, Path, description = "Collection id")),
    responses((status = 200, description = "The shares", body = wire::ShareList)))]
pub(crate) async fn shares(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let grants = crate::trace::block(move || ws.collection_shares(&actor, &id)).await??;
    Ok(share_list(grants))
}

/// `DELETE /v1/rag/collections/{id}/shares/{user_id}`: admin access, or
/// the user it is shared with, leaving it.
#[utoipa::path(delete, path = "/v1/rag/collections/{id}/shares/{user_id}", tag = "rag",
    params(("id" = String, Path, description = "Collection id"), ("user_id" = String, Path, description = "User id")),
    responses((status = 204, description = "The share is gone")))]
pub(crate) async fn unshare(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    let (id, user) = (CollectionId::from_string(id), UserId::from_string(user));
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.revoke_collection_share(&actor, &id, &user)).await??;
    Ok(HttpResponse::NoContent().finish())
}
