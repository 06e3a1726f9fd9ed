//! `POST /v1/rag/collections/{id}/documents`: a document as JSON
//! `{name, text}` or as a multipart form's `file` part. The caller's write
//! access is checked before the body is read; the body is read up to the
//! upload limit and no further (413 past it); the document is answered
//! 202 `indexing` and indexed in the background.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use offgrid_domain::CollectionId;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire;

/// Parts a multipart upload may have (the `file` and a few others, which
/// are read and ignored).
const MAX_PARTS: usize = 8;
/// Bytes read of a part other than `file`.
const MAX_OTHER_PART: usize = 64 * 1024;
/// Uploads whose bodies are being read at once, all users together: each
/// may hold up to the upload limit in memory.
const MAX_READING: usize = 4;
/// How long reading one upload's body may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// One of the server's [`MAX_READING`] places, given back when dropped.
struct Reading(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Reading {
    fn take(count: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Result<Self, ApiError> {
        use std::sync::atomic::Ordering;
        if count.fetch_add(1, Ordering::AcqRel) >= MAX_READING {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::server_busy(
                "too many uploads at once: try again in a moment",
            ));
        }
        Ok(Reading(count.clone()))
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        ErrorCode::PayloadTooLarge,
        format!(
            "the document is larger than the upload limit of {} MB (rag_max_upload_mb)",
            max >> 20
        ),
    )
}

fn bad_body(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidBody, message)
}

/// Appends `chunk` to `buf` unless that makes it longer than `max`.
fn push(buf: &mut Vec<u8>, chunk: &[u8], max: usize) -> Result<(), ()> {
    if buf.len().saturating_add(chunk.len()) > max {
        return Err(());
    }
    buf.extend_from_slice(chunk);
    Ok(())
}

/// A whole body of at most `max` bytes.
async fn read_body(
    mut payload: web::Payload,
    max: usize,
    limit_mb: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| bad_body(format!("cannot read the body: {e}")))?;
        push(&mut buf, &chunk, max).map_err(|()| too_large(limit_mb))?;
    }
    Ok(buf)
}

/// The `file` part of a multipart form: its name, declared type and bytes.
async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<(String, Option<String>, Vec<u8>), ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut file = None;
    let mut parts = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| bad_body(format!("invalid multipart form: {e}")))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(bad_body(format!("at most {MAX_PARTS} form parts")));
        }
        let is_file = field.name() == Some("file") && file.is_none();
        let name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let declared = field.content_type().map(|m| m.essence_str().to_owned());
        let limit = if is_file { max } else { MAX_OTHER_PART };
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad_body(format!("invalid multipart form: {e}")))?;
            push(&mut buf, &chunk, limit).map_err(|()| {
                if is_file {
                    too_large(max)
                } else {
                    bad_body("a form part other than `file` is too long")
                }
            })?;
        }
        if is_file {
            let name = name.ok_or_else(|| bad_body("the `file` part has no file name"))?;
            file = Some((name, declared, buf));
        }
    }
    file.ok_or_else(|| bad_body("the form has no `file` part"))
}

/// `POST /v1/rag/collections/{id}/documents` (write access).
#[utoipa::path(post, path = "/v1/rag/collections/{id}/documents", tag = "rag",
    params(("id" = String, Path, description = "Collection id")),
    request_body(content((wire::AddDocumentRequest = "application/json"), (String = "multipart/form-data")),
        description = "JSON {name, text}, or a multipart form with a `file` part (.txt, .md, .html or .pdf)"),
    responses((status = 202, description = "Accepted: indexing in the background", body = wire::Document)))]
pub(crate) async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = CollectionId::from_string(path.into_inner());
    let max = state
        .workspace
        .max_upload_bytes()
        .ok_or_else(|| ApiError::server_busy("indexing is not available"))?;
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let check = id.clone();
    crate::trace::block(move || ws.check_upload(&actor, &check)).await??;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // JSON escapes make a text longer; the text itself is held to the
    // limit below.
    let body_max = max.saturating_add(max / 4 + 64 * 1024);
    let declared_length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|n| n > body_max) {
        return Err(too_large(max));
    }
    let reading = Reading::take(&state.uploads_reading)?;
    let read = async {
        match essence.as_str() {
            "application/json" => {
                let body = read_body(payload, body_max, max).await?;
                // Parsed on the blocking pool: a large body takes a while.
                let doc = crate::trace::block(move || {
                    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                        ApiError::bad_request(ErrorCode::InvalidJson, format!("invalid JSON: {e}"))
                    })?;
                    crate::extract::object::<wire::AddDocumentRequest>(value)
                })
                .await??;
                if doc.text.len() > max {
                    return Err(too_large(max));
                }
                Ok((doc.name, None, doc.text.into_bytes()))
            }
            "multipart/form-data" => read_multipart(&req, payload, max).await,
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                ErrorCode::UnsupportedMediaType,
                "send JSON {name, text} or a multipart/form-data upload with a `file` part",
            )),
        }
    };
    let (name, declared, content) = actix_web::rt::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| bad_body("the upload took too long to arrive"))??;
    drop(reading);
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(&caller));
    let document = crate::trace::block(move || {
        ws.upload_document(&actor, &id, &name, declared.as_deref(), content)
    })
    .await??;
    Ok(HttpResponse::Accepted().json(wire::Document::from(document)))
}
