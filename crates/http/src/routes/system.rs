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
        default_model: s.default_model.clone(),
    }))
}
