//! Public endpoints: health, system configuration, the UI's entry page.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire;

/// `GET /health`: liveness, no credentials needed.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "The server is up", body = crate::wire::Health)))]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(wire::Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// `GET /v1/system/config`: the mode and features, for clients and the UI.
#[utoipa::path(get, path = "/v1/system/config", tag = "system",
    responses((status = 200, description = "Mode and features", body = crate::wire::SystemConfig)))]
pub(crate) async fn config(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let s = &state.settings;
    let setup_required = if !s.multi_user_mode || state.admin_known() {
        false
    } else {
        let auth = state.auth.clone();
        let required = crate::trace::block(move || auth.setup_required()).await??;
        if !required {
            state.mark_admin_exists();
        }
        required
    };
    Ok(HttpResponse::Ok().json(wire::SystemConfig {
        multi_user_mode: s.multi_user_mode,
        require_auth: s.require_auth,
        guest_access: s.guest_access,
        features: wire::Features {
            users: s.multi_user_mode,
            // Features that later releases add report false until they exist.
            metrics: false,
            agent: false,
            lora: false,
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        setup_required,
    }))
}

/// `GET /`: a minimal page until the web UI lands.
#[utoipa::path(get, path = "/", tag = "system",
    responses((status = 200, description = "The web UI's entry page", content_type = "text/html", body = String)))]
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>OffGrid</title></head><body><h1>OffGrid</h1>",
            "<p>The OffGrid server is running. API: <code>/v1/</code>; ",
            "status: <a href=\"/v1/system/config\">/v1/system/config</a>.</p>",
            "</body></html>"
        ))
}
