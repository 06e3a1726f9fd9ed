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
            // `GET /metrics`, for administrators (and a scrape token).
            metrics: true,
            // Features that later releases add report false until they exist.
            agent: false,
            lora: false,
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        setup_required,
        default_model: s.default_model.clone(),
    }))
}

/// `GET /metrics`: Prometheus metrics in the OpenMetrics text format, for
/// administrators or a scraper holding `metrics_token` (per-user series
/// name users).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Metrics in the OpenMetrics text format", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let queue = state.models.queue();
    let running = queue
        .iter()
        .filter(|j| j.state == offgrid_inference::JobState::Running)
        .count();
    let gauges = crate::metrics::Gauges {
        models_loaded: state
            .models
            .list()
            .iter()
            .filter(|s| s.loaded.is_some())
            .count(),
        running,
        queued: queue.len().saturating_sub(running),
    };
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&gauges))
}
