//! Models: `GET /v1/models` and `GET /v1/models/{id}` for everyone who may
//! view models; `POST /v1/models` (import) and `DELETE /v1/models/{id}`
//! for administrators.
//!
//! A model object is OpenAI's (`id`, `object`, `created`, `owned_by`) plus
//! what the registry records and whether it is loaded.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use offgrid_config::KeepAlive;
use offgrid_inference::InferenceError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::models::{ModelError, ModelStatus, Models};
use crate::state::AppState;

/// Appended to "model not found" when the server has no models at all.
const NO_MODELS_HINT: &str =
    " (no models are installed: run `cargo xtask models` to install the default models)";

pub(crate) fn model_not_found(message: String) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "model_not_found",
        message,
    )
}

/// The HTTP answer for a model error.
pub(crate) fn model_error(models: &Models, e: ModelError) -> ApiError {
    match e {
        ModelError::NotFound(_) | ModelError::WrongKind { .. } => {
            let hint = if models.is_empty() {
                NO_MODELS_HINT
            } else {
                ""
            };
            model_not_found(format!("{e}{hint}"))
        }
        ModelError::Inference(e) => inference_error(e),
    }
}

fn inference_error(e: InferenceError) -> ApiError {
    let (status, code) = match &e {
        InferenceError::InvalidModelId(_) => (StatusCode::BAD_REQUEST, "invalid_model_name"),
        InferenceError::ModelExists(_) => (StatusCode::CONFLICT, "model_exists"),
        InferenceError::ModelNotFound(_) => (StatusCode::NOT_FOUND, "model_not_found"),
        InferenceError::InvalidGguf { .. }
        | InferenceError::NotAModel { .. }
        | InferenceError::Metadata(_)
        | InferenceError::Tokenizer(_)
        | InferenceError::Template(_) => (StatusCode::BAD_REQUEST, "invalid_model"),
        InferenceError::UnsupportedArchitecture(_) => {
            (StatusCode::BAD_REQUEST, "unsupported_architecture")
        }
        InferenceError::Io { .. } => (StatusCode::BAD_REQUEST, "invalid_path"),
        InferenceError::ContextLength { .. } | InferenceError::Candle(_) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "model_load_failed",
                e.to_string(),
            );
        }
    };
    ApiError::new(status, "invalid_request_error", code, e.to_string())
}

/// The chat model `id`, loaded on the blocking pool if needed.
pub(crate) async fn chat(
    state: &AppState,
    id: &str,
    keep_alive: Option<KeepAlive>,
) -> Result<Arc<offgrid_inference::ChatModel>, ApiError> {
    let models = state.models.clone();
    let id = id.to_owned();
    web::block(move || {
        models
            .chat(&id, keep_alive)
            .map_err(|e| model_error(&models, e))
    })
    .await?
}

/// The embedding model `id`, loaded on the blocking pool if needed.
pub(crate) async fn embedder(
    state: &AppState,
    id: &str,
    keep_alive: Option<KeepAlive>,
) -> Result<Arc<offgrid_inference::Embedder>, ApiError> {
    let models = state.models.clone();
    let id = id.to_owned();
    web::block(move || {
        models
            .embedder(&id, keep_alive)
            .map_err(|e| model_error(&models, e))
    })
    .await?
}

/// A request's `keep_alive`: seconds as a number, or a duration string
/// (`"10m"`, `"1h"`, `"0"`, `"-1"`), as in Ollama. Residency is shared by
/// everyone, so only callers who may manage models change it: anyone
/// else's (valid) value is replaced by the server's default.
pub(crate) fn keep_alive(
    value: Option<&Value>,
    caller: &crate::access::Caller,
) -> Result<Option<KeepAlive>, ApiError> {
    let requested = parse_keep_alive(value)?;
    let may_change =
        offgrid_policy::authorize(&caller.principal, offgrid_domain::Permission::ManageModels)
            .is_ok();
    Ok(requested.filter(|_| may_change))
}

fn parse_keep_alive(value: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().and_then(KeepAlive::from_seconds),
        Some(Value::String(s)) => KeepAlive::parse(s),
        Some(_) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_value",
            "keep_alive: must be seconds or a duration like \"5m\", \"1h\", \"0\" (unload after this request) or \"-1\" (keep loaded)",
        )
    })
}

fn model_json(m: &ModelStatus) -> Value {
    let e = &m.entry;
    let mut v = json!({
        "id": e.id, "object": "model", "created": e.added_at, "owned_by": "offgrid",
        "type": e.kind.as_str(), "format": e.format, "architecture": e.architecture,
        "parameters": e.parameters, "quantization": e.quantization,
        "context_length": e.context_length, "size_bytes": e.size_bytes, "sha256": e.sha256,
        "loaded": m.loaded.is_some(),
    });
    if let Some(d) = e.dimensions {
        v["dimensions"] = json!(d);
    }
    if let Some(left) = m.loaded {
        // Seconds until it unloads when idle; null: never.
        v["expires_in"] = json!(left.map(|d| d.as_secs()));
    }
    v
}

/// `GET /v1/models`.
pub(crate) async fn list(state: web::Data<AppState>) -> HttpResponse {
    let data: Vec<Value> = state.models.list().iter().map(model_json).collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}`.
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let status = state
        .models
        .status(&id)
        .ok_or_else(|| model_error(&state.models, ModelError::NotFound(id)))?;
    Ok(HttpResponse::Ok().json(model_json(&status)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportRequest {
    /// Absolute path, on the server, of a `.gguf` file or an embedding
    /// model folder.
    path: String,
    /// The new model's id (default: from the file name).
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/models`: imports a model file that is already on the server's
/// disk (as `offgrid models import` does). Blocking work (copying and
/// hashing) runs on the blocking pool.
pub(crate) async fn import(
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let req: ImportRequest = serde_json::from_value(body.into_inner()).map_err(|e| {
        ApiError::bad_request("invalid_request", format!("invalid request body: {e}"))
    })?;
    let source = PathBuf::from(&req.path);
    if !source.is_absolute() {
        return Err(ApiError::bad_request(
            "invalid_path",
            "path: must be an absolute path on the server",
        ));
    }
    let models = state.models.clone();
    let entry = web::block(move || models.import(&source, req.name.as_deref()))
        .await?
        .map_err(|e| model_error(&state.models, e))?;
    let status = ModelStatus {
        entry,
        loaded: None,
    };
    Ok(HttpResponse::build(StatusCode::CREATED).json(model_json(&status)))
}

/// `DELETE /v1/models/{id}`: OpenAI's deletion answer.
pub(crate) async fn remove(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let models = state.models.clone();
    let removed = id.clone();
    web::block(move || models.remove(&removed))
        .await?
        .map_err(|e| model_error(&state.models, e))?;
    Ok(HttpResponse::Ok().json(json!({"id": id, "object": "model", "deleted": true})))
}
