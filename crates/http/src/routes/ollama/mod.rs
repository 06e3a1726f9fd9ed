//! Ollama's native API under `/api`, for the tools that speak it (editor
//! plugins, chat front ends, the `ollama` Python and JavaScript clients).
//! Nothing here is a second engine: a generation goes through the same
//! admission, quota, fair scheduler and usage records as `/v1` (it calls
//! [`super::openai::start`]), behind the same access gate (a bearer token
//! or API key works as on `/v1`). What differs is the wire: Ollama's
//! field names, NDJSON streams ([`stream`]), nanosecond timings, and
//! errors as `{"error": "..."}` (the app rewrites every error of an
//! `/api` route into that shape, see [`rewrite_error`]).
//!
//! Model names are our ids; `id:latest` (and Ollama's `library/` prefix)
//! name the same model, matched without regard to case.

mod chat;
mod embed;
mod options;
mod stream;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use offgrid_inference::{ModelError, ModelKind, ModelStatus};
use serde_json::{Map, Value};

pub(crate) use chat::{__path_chat, __path_generate, chat, generate};
pub(crate) use embed::{__path_embed, __path_embeddings, embed, embeddings};

use crate::error::ApiError;
use crate::routes::openai::parse;
use crate::state::AppState;
use crate::wire::{
    OllamaError, OllamaModelDetails, OllamaModelRef, OllamaPs, OllamaRunning, OllamaShow,
    OllamaStatus, OllamaTag, OllamaTags, OllamaVersion,
};

/// Longest model name accepted.
const MAX_NAME: usize = 256;

/// Largest error body rewritten (error bodies are a few hundred bytes).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Ollama reads every body as JSON whatever its `Content-Type`, and its
/// documentation's examples are `curl …/api/chat -d '{…}'` (sent as a
/// form): a body without a JSON type is taken as JSON when no `Origin`
/// header says a browser sent it. A page in a browser always sends
/// `Origin` with a POST, and may send these types without asking first,
/// so that case keeps the JSON-only rule (no drive-by use of the models).
fn assume_json(req: &mut ServiceRequest) {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.trim().to_ascii_lowercase();
            t.starts_with("application/json") || t.contains("+json")
        });
    if !json {
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
}

/// Middleware of every `/api` resource: an error answer (from the access
/// gate, the JSON extractor or a handler) leaves as Ollama's
/// `{"error": "..."}` with the same status and headers.
pub(crate) async fn rewrite_error(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    assume_json(&mut req);
    let http = req.request().clone();
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => ServiceResponse::new(http, e.error_response()),
    };
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let (http, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes_limited(body, ERROR_BODY_LIMIT)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    let body = serde_json::to_string(&OllamaError { error: message }).unwrap_or_default();
    let mut out = head.set_body(BoxBody::new(body));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    out.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(ServiceResponse::new(http, out))
}

/// The installed model an Ollama name means: `id`, `id:latest`,
/// `library/id:latest` (any case). 404 otherwise, another tag included.
pub(crate) fn resolve(state: &AppState, name: &str) -> Result<String, ApiError> {
    let not_found = || {
        ApiError::from(ModelError::NotFound {
            id: name.to_owned(),
            none_installed: state.models.is_empty(),
        })
    };
    if name.len() > MAX_NAME {
        return Err(crate::routes::openai::invalid(
            "model",
            format!("must be at most {MAX_NAME} bytes"),
        ));
    }
    let mut base = name.trim();
    for prefix in ["registry.ollama.ai/", "library/"] {
        base = base.strip_prefix(prefix).unwrap_or(base);
    }
    if let Some((model, tag)) = base.rsplit_once(':') {
        if !tag.eq_ignore_ascii_case("latest") {
            return Err(not_found());
        }
        base = model;
    }
    if base.is_empty() {
        return Err(crate::routes::openai::invalid("model", "is required"));
    }
    let ids: Vec<String> = state
        .models
        .list()
        .into_iter()
        .map(|s| s.entry.id)
        .collect();
    // The exact id first, then one that differs only in case.
    ids.iter()
        .find(|id| id.as_str() == base)
        .or_else(|| ids.iter().find(|id| id.eq_ignore_ascii_case(base)))
        .cloned()
        .ok_or_else(not_found)
}

/// The name a request gave, as answers echo it: trimmed (and bounded by
/// [`resolve`]).
pub(crate) fn echoed(name: &str) -> String {
    name.trim().to_owned()
}

/// Unix seconds as RFC 3339 (far-future and invalid times clamp).
pub(crate) fn rfc3339(unix: i64) -> String {
    let unix = unix.clamp(0, 253_402_300_799);
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Now, RFC 3339 with nanoseconds (an answer's `created_at`).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// A parameter count the way Ollama shows it: `135M`, `1.2B`.
fn parameter_size(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{}K", (n + 500) / 1_000),
        1_000_000..1_000_000_000 => format!("{}M", (n + 500_000) / 1_000_000),
        _ => format!("{:.1}B", n as f64 / 1e9),
    }
}

fn details(status: &ModelStatus) -> OllamaModelDetails {
    let e = &status.entry;
    OllamaModelDetails {
        parent_model: String::new(),
        format: e.format.clone(),
        family: e.architecture.clone(),
        families: vec![e.architecture.clone()],
        parameter_size: parameter_size(e.parameters),
        quantization_level: e.quantization.clone(),
    }
}

/// `id:latest`, as Ollama lists names.
fn tagged(id: &str) -> String {
    format!("{id}:latest")
}

/// `GET /api/version`.
#[utoipa::path(get, path = "/api/version", tag = "ollama",
    responses((status = 200, description = "The server's version", body = OllamaVersion)))]
pub(crate) async fn version() -> HttpResponse {
    HttpResponse::Ok().json(OllamaVersion {
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// `GET /api/tags`: the installed models, newest first.
#[utoipa::path(get, path = "/api/tags", tag = "ollama",
    responses((status = 200, description = "Installed models", body = OllamaTags)))]
pub(crate) async fn tags(state: web::Data<AppState>) -> HttpResponse {
    let mut list = state.models.list();
    list.sort_by(|a, b| {
        b.entry
            .added_at
            .cmp(&a.entry.added_at)
            .then(a.entry.id.cmp(&b.entry.id))
    });
    let models = list
        .iter()
        .map(|s| OllamaTag {
            name: tagged(&s.entry.id),
            model: tagged(&s.entry.id),
            modified_at: rfc3339(s.entry.added_at),
            size: s.entry.size_bytes,
            digest: s.entry.sha256.clone(),
            details: details(s),
        })
        .collect();
    HttpResponse::Ok().json(OllamaTags { models })
}

/// `GET /api/ps`: the models in memory.
#[utoipa::path(get, path = "/api/ps", tag = "ollama",
    responses((status = 200, description = "Loaded models", body = OllamaPs)))]
pub(crate) async fn ps(state: web::Data<AppState>) -> HttpResponse {
    let now = crate::routes::openai::now();
    let models = state
        .models
        .list()
        .iter()
        .filter_map(|s| {
            let left = s.loaded?;
            // Never unloaded: as far ahead as the format goes.
            let expires = left.map_or(i64::MAX, |d| {
                now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            });
            Some(OllamaRunning {
                name: tagged(&s.entry.id),
                model: tagged(&s.entry.id),
                size: s.entry.size_bytes,
                digest: s.entry.sha256.clone(),
                details: details(s),
                expires_at: rfc3339(expires),
                size_vram: 0,
                context_length: s.entry.context_length.unwrap_or(0),
            })
        })
        .collect();
    HttpResponse::Ok().json(OllamaPs { models })
}

/// The model a show, pull or delete body names (`model`, or `name`).
fn named(state: &AppState, body: Value) -> Result<(String, OllamaModelRef), ApiError> {
    let req: OllamaModelRef = parse(body)?;
    let name = req
        .model
        .as_deref()
        .filter(|m| !m.is_empty())
        .or(req.name.as_deref())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(crate::routes::openai::invalid("model", "is required"));
    }
    Ok((resolve(state, name)?, req))
}

/// `POST /api/show`: what a model is.
#[utoipa::path(post, path = "/api/show", tag = "ollama", request_body = OllamaModelRef,
    responses((status = 200, description = "The model", body = OllamaShow)))]
pub(crate) async fn show(
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = named(&state, body.into_inner())?;
    let status = state.models.status(&id).ok_or_else(|| {
        ApiError::from(ModelError::NotFound {
            id: id.clone(),
            none_installed: state.models.is_empty(),
        })
    })?;
    let e = &status.entry;
    let mut info = Map::new();
    info.insert("general.architecture".into(), e.architecture.clone().into());
    info.insert("general.parameter_count".into(), e.parameters.into());
    if let Some(ctx) = e.context_length {
        info.insert(format!("{}.context_length", e.architecture), ctx.into());
    }
    if let Some(dims) = e.dimensions {
        info.insert(format!("{}.embedding_length", e.architecture), dims.into());
    }
    let capability = match e.kind {
        ModelKind::Chat => "completion",
        ModelKind::Embedding => "embedding",
    };
    Ok(HttpResponse::Ok().json(OllamaShow {
        license: String::new(),
        modelfile: format!("# Modelfile of the OffGrid model {id}\nFROM {}\n", e.file),
        parameters: String::new(),
        template: String::new(),
        details: details(&status),
        model_info: info,
        capabilities: vec![capability.to_owned()],
        modified_at: rfc3339(e.added_at),
    }))
}

/// `POST /api/pull`: this server is offline; an installed model is
/// already here (success), anything else is a 404 that says how to
/// install models.
#[utoipa::path(post, path = "/api/pull", tag = "ollama", request_body = OllamaModelRef,
    responses((status = 200, description = "The model is installed: one status line (NDJSON unless `stream: false`)",
        content((OllamaStatus = "application/json"), (OllamaStatus = "application/x-ndjson")))))]
pub(crate) async fn pull(
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (_, req) = named(&state, body.into_inner()).map_err(|e| {
        if e.status == actix_web::http::StatusCode::NOT_FOUND {
            ApiError::not_found(
                "this server is offline and cannot download models: that model is not installed (an administrator imports models with `offgrid models import` or POST /v1/models)",
            )
        } else {
            e
        }
    })?;
    let status = OllamaStatus {
        status: "success".to_owned(),
    };
    Ok(if req.stream == Some(false) {
        HttpResponse::Ok().json(status)
    } else {
        stream::one_line(&status)
    })
}

/// `DELETE /api/delete`: removes an installed model (administrators).
#[utoipa::path(delete, path = "/api/delete", tag = "ollama", request_body = OllamaModelRef,
    responses((status = 200, description = "Removed (empty body)")))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: crate::access::Caller,
    client: crate::extract::Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = named(&state, body.into_inner())?;
    // Audited as on /v1.
    crate::routes::models::remove_model(state.into_inner(), caller, client, id).await?;
    Ok(HttpResponse::Ok().finish())
}

/// Any other `/api/...` path: Ollama's routes this server does not have
/// (`/api/create`, `/api/copy`, `/api/push`, …), as a 404 in Ollama's
/// shape.
pub(crate) async fn unknown() -> HttpResponse {
    HttpResponse::NotFound().json(OllamaError {
        error: "this Ollama endpoint is not available on this server".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::{parameter_size, rfc3339};

    #[test]
    fn parameter_sizes_read_as_ollama_shows_them() {
        assert_eq!(parameter_size(134_515_008), "135M");
        assert_eq!(parameter_size(22_713_216), "23M");
        assert_eq!(parameter_size(8_030_261_248), "8.0B");
        assert_eq!(parameter_size(999), "999");
    }

    #[test]
    fn times_are_rfc3339_and_clamped() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
