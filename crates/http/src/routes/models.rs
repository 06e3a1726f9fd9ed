//! Models: `GET /v1/models` and `GET /v1/models/{id}` for everyone who may
//! view models; `POST /v1/models` (import) and `DELETE /v1/models/{id}`
//! for administrators.
//!
//! A model object is OpenAI's (`id`, `object`, `created`, `owned_by`) plus
//! what the registry records and whether it is loaded.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use offgrid_config::KeepAlive;
use offgrid_domain::audit::NewAuditEvent;
use offgrid_inference::InferenceError;
use offgrid_inference::registry::default_id;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;
use crate::wire;
use offgrid_inference::{ModelError, ModelStatus};

/// An import's failure, as the admin sees it: what is wrong with the model
/// is said about the path they gave, never about a path on the server
/// (staging folders, the canonical source); IO and candle failures are
/// logged and answered generically.
fn import_error(given: &str, e: ModelError) -> ApiError {
    let e = match e {
        ModelError::Inference(e) => e,
        other => return other.into(),
    };
    let (status, code, message) = match &e {
        InferenceError::InvalidModelId(_) => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidModelName,
            e.to_string(),
        ),
        InferenceError::ModelExists(_) => {
            (StatusCode::CONFLICT, ErrorCode::ModelExists, e.to_string())
        }
        InferenceError::UnsupportedArchitecture(_) => (
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedArchitecture,
            e.to_string(),
        ),
        InferenceError::InvalidGguf { reason, .. } | InferenceError::NotAModel { reason, .. } => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidModel,
            format!("{given} cannot be imported: {reason}"),
        ),
        InferenceError::Metadata(_)
        | InferenceError::Tokenizer(_)
        | InferenceError::Template(_) => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidModel,
            format!("{given} cannot be imported: {e}"),
        ),
        // Io, Candle and anything else: nothing about the server is shown.
        _ => {
            tracing::error!(path = given, error = %e, detail = ?e, "model import failed");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                ErrorCode::ModelImportFailed,
                "The model could not be imported; the server log has details",
            );
        }
    };
    ApiError::new(status, "invalid_request_error", code, message)
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
            ErrorCode::InvalidValue,
            "keep_alive: must be seconds or a duration like \"5m\", \"1h\", \"0\" (unload after this request) or \"-1\" (keep loaded)",
        )
    })
}

/// `GET /v1/models`.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "Installed models", body = crate::wire::ModelList)))]
pub(crate) async fn list(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(wire::ModelList {
        object: wire::LIST.to_owned(),
        data: state.models.list().iter().map(wire::Model::from).collect(),
    })
}

/// `GET /v1/models/{id}`.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models", params(("id" = String, Path, description = "Model id")),
    responses((status = 200, description = "The model", body = crate::wire::Model)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let status = state.models.status(&id).ok_or_else(|| {
        ApiError::from(ModelError::NotFound {
            id,
            none_installed: state.models.is_empty(),
        })
    })?;
    Ok(HttpResponse::Ok().json(wire::Model::from(&status)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportRequest {
    /// A `.gguf` file or an embedding model folder inside the model import
    /// directory: relative to it, or absolute.
    path: String,
    /// The new model's id (default: from the file name).
    #[serde(default)]
    name: Option<String>,
}

/// The one answer for a path that is outside the import directory, missing,
/// unreadable or otherwise refused: which of these it was is not said, so
/// the endpoint cannot probe the server's disk.
fn path_refused(given: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidPath,
        format!(
            "path {given:?}: no importable file or folder of that name in the model import \
             directory (model_import_dir)"
        ),
    )
}

/// Resolves `given` inside the import directory `dir`: symlinks and `..`
/// are resolved first, and the result (and, for a folder, every entry in
/// it) must lie inside `dir`.
fn resolve_import_source(dir: &Path, given: &str) -> Result<PathBuf, ApiError> {
    let dir = dir.canonicalize().map_err(|e| {
        tracing::warn!(dir = %dir.display(), error = %e, "model import directory unavailable");
        ApiError::bad_request(
            ErrorCode::ImportDirUnavailable,
            "the model import directory does not exist: create it, or set model_import_dir \
             (OFFGRID_MODEL_IMPORT_DIR)",
        )
    })?;
    if given.is_empty() || given.contains('\0') {
        return Err(path_refused(given));
    }
    let inside = |p: &Path| -> Option<PathBuf> {
        let real = p.canonicalize().ok()?;
        (real.starts_with(&dir) && real != dir).then_some(real)
    };
    let source = inside(&dir.join(given)).ok_or_else(|| path_refused(given))?;
    if source.is_dir() {
        let entries = std::fs::read_dir(&source).map_err(|_| path_refused(given))?;
        for entry in entries {
            let entry = entry.map_err(|_| path_refused(given))?;
            inside(&entry.path()).ok_or_else(|| path_refused(given))?;
        }
    }
    Ok(source)
}

/// An import's audit details: where from, and what came of it (fields in
/// alphabetical order, as the audit log has always had them).
#[derive(Serialize)]
struct ImportDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

/// `{}`: an event that needs no details.
#[derive(Serialize)]
struct NoDetails {}

/// Records a model change in the audit log (blocking). A failure to write
/// is logged, not returned: the change itself is done.
fn audit(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    action: &str,
    target: Option<String>,
    details: &impl Serialize,
) {
    let repos = state.auth.repos();
    let principal = &caller.principal;
    let actor = caller
        .user
        .as_ref()
        .map(|u| u.username.clone())
        .or_else(|| {
            let id = principal.user_id.as_ref()?;
            repos.users.get(id).ok().map(|u| u.username)
        });
    let event = NewAuditEvent {
        at: offgrid_auth::service::now(),
        actor_id: principal.user_id.clone().filter(|id| !id.is_system()),
        actor,
        action: action.to_owned(),
        target,
        client_addr: client.addr.clone(),
        details: serde_json::to_string(details).ok(),
    };
    if let Err(e) = repos.audit.append(event) {
        tracing::error!(action, error = %e, "cannot write audit log");
    }
}

/// `POST /v1/models`: imports a model file or folder from the model import
/// directory (as `offgrid models import` does from anywhere, for the local
/// operator), and records it in the audit log, refusals included. Blocking
/// work (resolving, copying and hashing) runs on the blocking pool.
#[utoipa::path(post, path = "/v1/models", tag = "models", request_body = ImportRequest,
    responses((status = 201, description = "The imported model", body = crate::wire::Model)))]
pub(crate) async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<ImportRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let state = state.into_inner();
    let outcome = crate::trace::block(move || {
        let given = req.path;
        // What the audit row records of the given path (it is the admin's
        // input, up to the body limit).
        let logged: String = given.chars().take(1024).collect();
        let result =
            resolve_import_source(&state.settings.model_import_dir(), &given).and_then(|source| {
                // The default id comes from the name the admin gave, not
                // from where a symlink leads.
                let id = match req.name {
                    Some(id) => id,
                    None => {
                        default_id(Path::new(&given)).map_err(|e| import_error(&given, e.into()))?
                    }
                };
                state
                    .models
                    .import(&source, Some(&id))
                    .map_err(|e| import_error(&given, e))
            });
        match &result {
            Ok(entry) => audit(
                &state,
                &caller,
                &client,
                "model.imported",
                Some(entry.id.clone()),
                &ImportDetails {
                    path: &logged,
                    kind: Some(entry.kind.as_str()),
                    sha256: Some(&entry.sha256),
                    code: None,
                },
            ),
            Err(e) => audit(
                &state,
                &caller,
                &client,
                "model.import_refused",
                None,
                &ImportDetails {
                    path: &logged,
                    kind: None,
                    sha256: None,
                    code: Some(e.code.as_str()),
                },
            ),
        }
        result
    })
    .await??;
    let status = ModelStatus {
        entry: outcome,
        loaded: None,
    };
    Ok(HttpResponse::build(StatusCode::CREATED).json(wire::Model::from(&status)))
}

/// Removes installed model `id` (blocking pool) and audits it: what
/// `DELETE /v1/models/{id}` and Ollama's `DELETE /api/delete` share.
pub(crate) async fn remove_model(
    state: std::sync::Arc<AppState>,
    caller: Caller,
    client: Client,
    id: String,
) -> Result<(), ApiError> {
    crate::trace::block(move || {
        let result = state.models.remove(&id).map_err(|e| match e {
            ModelError::Inference(InferenceError::InvalidModelId(_)) => {
                ApiError::bad_request(ErrorCode::InvalidModelName, e.to_string())
            }
            ModelError::Inference(InferenceError::ModelNotFound(_)) => {
                ApiError::from(ModelError::NotFound {
                    id: id.clone(),
                    none_installed: state.models.is_empty(),
                })
            }
            other => other.into(),
        });
        if result.is_ok() {
            audit(
                &state,
                &caller,
                &client,
                "model.deleted",
                Some(id.clone()),
                &NoDetails {},
            );
        }
        result.map(|_| ())
    })
    .await?
}

/// `DELETE /v1/models/{id}`: OpenAI's deletion answer; audited.
#[utoipa::path(delete, path = "/v1/models/{id}", tag = "models", params(("id" = String, Path, description = "Model id")),
    responses((status = 200, description = "Removed", body = crate::wire::Deleted)))]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    remove_model(state.into_inner(), caller, client, id.clone()).await?;
    Ok(HttpResponse::Ok().json(wire::Deleted::new("model", id)))
}
