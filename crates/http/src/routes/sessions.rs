//! Chat sessions: `/v1/sessions` and everything under it (messages,
//! export, shares). Each handler turns the request into one call of the
//! workspace service on the blocking pool; the service applies the policy
//! and the repository hides what the caller may not see (404).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use offgrid_domain::workspace::NewChatMessage;
use offgrid_domain::{ChatSessionId, UserId};
use offgrid_workspace::ShareTarget;
use offgrid_workspace::sessions::ListRequest;
use serde::Deserialize;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;

/// `GET /v1/sessions` and `GET /v1/rag/collections` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Text in the title or name (case-insensitive).
    #[serde(default)]
    q: Option<String>,
    /// Those shared with the caller instead of their own.
    #[serde(default)]
    shared: bool,
    /// Every user's (administrators).
    #[serde(default)]
    all: bool,
    /// Page size, 1 to 100 (default 50).
    #[serde(default)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

impl ListQuery {
    /// The workspace's form of the query.
    pub(crate) fn into_request(self) -> ListRequest {
        ListRequest {
            shared: self.shared,
            all: self.all,
            q: self.q,
            limit: self.limit,
            cursor: self.cursor,
        }
    }
}

/// `POST /v1/sessions`.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = wire::CreateSessionRequest,
    responses((status = 201, description = "The new session", body = wire::Session)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<wire::CreateSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let view = crate::trace::block(move || {
        ws.create_session(
            &actor,
            body.title.as_deref(),
            body.model.as_deref(),
            body.preset_id.as_deref(),
        )
    })
    .await??;
    Ok(HttpResponse::Created().json(wire::Session::new(view)))
}

/// `GET /v1/sessions?q=&shared=&all=&limit=&cursor=`.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, description = "Sessions, most recently changed first", body = wire::SessionList)))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = query.into_inner().into_request();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let page = crate::trace::block(move || ws.list_sessions(&actor, &request)).await??;
    Ok(HttpResponse::Ok().json(wire::SessionList {
        object: wire::LIST.to_owned(),
        data: page.data.into_iter().map(wire::Session::new).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// `GET /v1/sessions/{id}`: the session with its messages (left out for
/// an administrator the server keeps other users' messages from).
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The session", body = wire::Session)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ChatSessionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let (view, messages) = crate::trace::block(move || ws.get_session(&actor, &id)).await??;
    let mut session = wire::Session::new(view);
    session.messages = messages.map(|m| m.into_iter().map(wire::Message::from).collect());
    Ok(HttpResponse::Ok().json(session))
}

/// `PATCH /v1/sessions/{id}`.
#[utoipa::path(patch, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    request_body = wire::UpdateSessionRequest,
    responses((status = 200, description = "The changed session", body = wire::Session)))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::UpdateSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = ChatSessionId::from_string(path.into_inner());
    let body = body.into_inner();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let view = crate::trace::block(move || {
        ws.update_session(
            &actor,
            &id,
            body.title.as_deref(),
            body.model.as_ref().map(Option::as_deref),
            body.preset_id.as_ref().map(Option::as_deref),
        )
    })
    .await??;
    Ok(HttpResponse::Ok().json(wire::Session::new(view)))
}

/// `DELETE /v1/sessions/{id}`: the owner or an administrator.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Deleted, with its messages and shares")))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ChatSessionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.delete_session(&actor, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/sessions/{id}/messages`: stores one message (write access).
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    request_body = wire::AddMessageRequest,
    responses((status = 201, description = "The stored message", body = wire::Message)))]
pub(crate) async fn add_message(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    body: JsonObject<wire::AddMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = ChatSessionId::from_string(path.into_inner());
    let body = body.into_inner();
    let message = NewChatMessage {
        role: body.role,
        content: body.content,
        model: None,
        usage: None,
        citations: None,
        interrupted: false,
    };
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let mut stored =
        crate::trace::block(move || ws.add_messages(&actor, &id, &[message])).await??;
    let message = stored
        .pop()
        .ok_or_else(|| ApiError::internal("a stored message went missing"))?;
    Ok(HttpResponse::Created().json(wire::Message::from(message)))
}

/// `GET /v1/sessions/{id}/export` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    /// `md` (default) or `json`.
    #[serde(default)]
    format: ExportFormat,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportFormat {
    /// Markdown.
    #[default]
    Md,
    /// The session with its messages as JSON.
    Json,
}

/// `GET /v1/sessions/{id}/export?format=md|json`: the conversation as a
/// Markdown or JSON download.
#[utoipa::path(get, path = "/v1/sessions/{id}/export", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), ExportQuery),
    responses((status = 200, description = "The conversation: Markdown, or with format=json the session with its messages",
        content((String = "text/markdown"), (wire::Session = "application/json")))))]
pub(crate) async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let json = query.into_inner().format == ExportFormat::Json;
    let id = ChatSessionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let (view, messages) = crate::trace::block(move || ws.messages(&actor, &id)).await??;
    let mut session = wire::Session::new(view);
    let messages: Vec<wire::Message> = messages.into_iter().map(wire::Message::from).collect();
    let name = format!("session-{}", session.id);
    if json {
        session.messages = Some(messages);
        return Ok(HttpResponse::Ok()
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"{name}.json\""),
            ))
            .json(session));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}.md\""),
        ))
        .body(markdown(&session, &messages)))
}

/// The conversation as Markdown: the title, then each message under its
/// author and time.
fn markdown(session: &wire::Session, messages: &[wire::Message]) -> String {
    let mut out = format!(
        "# {}\n\nOwner: {} · created {}\n",
        session.title, session.owner.username, session.created_at
    );
    for m in messages {
        let who = match m.role {
            offgrid_domain::workspace::MessageRole::System => "System",
            offgrid_domain::workspace::MessageRole::User => "User",
            offgrid_domain::workspace::MessageRole::Assistant => "Assistant",
        };
        out.push_str(&format!("\n## {who} · {}\n\n{}\n", m.created_at, m.content));
        if m.interrupted {
            out.push_str("\n*(interrupted)*\n");
        }
    }
    out
}

/// `POST /v1/sessions/{id}/shares`: 201 for a new share, 200 when an
/// existing one changes level.
#[utoipa::path(post, path = "/v1/sessions/{id}/shares", tag = "sessions", params(("id" = String, Path, description = "Session id")),
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
    let id = ChatSessionId::from_string(path.into_inner());
    let body = body.into_inner();
    let (target, level) = share_target(body)?;
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let shared =
        crate::trace::block(move || ws.share_session(&actor, &id, &target, level)).await??;
    Ok(shared_response(shared))
}

/// Whom a share request names, and at what level.
pub(super) fn share_target(
    body: wire::ShareRequest,
) -> Result<(ShareTarget, offgrid_domain::workspace::GrantLevel), ApiError> {
    let target = match (body.username, body.user_id) {
        (Some(name), None) => ShareTarget::Username(name),
        (None, Some(uid)) => ShareTarget::UserId(UserId::from_string(uid)),
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRequest,
                "give username or user_id, not both",
            ));
        }
    };
    Ok((target, body.permission))
}

/// 201 with a new share, 200 with a changed one.
pub(super) fn shared_response(
    (grant, created): (offgrid_domain::workspace::Grant, bool),
) -> HttpResponse {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status).json(wire::Share::from(grant))
}

/// The shares of a resource as a list.
pub(super) fn share_list(grants: Vec<offgrid_domain::workspace::Grant>) -> HttpResponse {
    HttpResponse::Ok().json(wire::ShareList {
        object: wire::LIST.to_owned(),
        data: grants.into_iter().map(wire::Share::from).collect(),
        next_cursor: None,
    })
}

/// `GET /v1/sessions/{id}/shares` (admin access to the session).
#[utoipa::path(get, path = "/v1/sessions/{id}/shares", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The shares", body = wire::ShareList)))]
pub(crate) async fn shares(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ChatSessionId::from_string(path.into_inner());
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let grants = crate::trace::block(move || ws.session_shares(&actor, &id)).await??;
    Ok(share_list(grants))
}

/// `DELETE /v1/sessions/{id}/shares/{user_id}`: admin access, or the user
/// the session is shared with, leaving it.
#[utoipa::path(delete, path = "/v1/sessions/{id}/shares/{user_id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), ("user_id" = String, Path, description = "User id")),
    responses((status = 204, description = "The share is gone")))]
pub(crate) async fn unshare(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    let (id, user) = (ChatSessionId::from_string(id), UserId::from_string(user));
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    crate::trace::block(move || ws.revoke_session_share(&actor, &id, &user)).await??;
    Ok(HttpResponse::NoContent().finish())
}
