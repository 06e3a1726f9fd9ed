//! Public endpoints: health, system configuration, the UI's entry page.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire;
use crate::wire::MetricsHistory;

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
            benchmark_users: s.benchmark_users,
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
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&gauges(&state)))
}

/// The gauges' values now: models in memory, generations running and
/// waiting.
pub(crate) fn gauges(state: &AppState) -> crate::metrics::Gauges {
    let queue = state.models.queue();
    let running = queue
        .iter()
        .filter(|j| j.state == offgrid_inference::JobState::Running)
        .count();
    crate::metrics::Gauges {
        models_loaded: state
            .models
            .list()
            .iter()
            .filter(|s| s.loaded.is_some())
            .count(),
        running,
        queued: queue.len().saturating_sub(running),
    }
}

/// `GET /v1/metrics/history`: the last hour of `GET /metrics` as chart
/// points (administrators; per-user usage names users).
#[utoipa::path(get, path = "/v1/metrics/history", tag = "system",
    responses((status = 200, description = "One point per interval, oldest first", body = MetricsHistory)))]
pub(crate) async fn metrics_history(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let points = crate::trace::block(move || state.metrics.history(&gauges(&state))).await?;
    Ok(HttpResponse::Ok().json(MetricsHistory {
        interval_seconds: crate::metrics::history::INTERVAL.as_secs(),
        points,
    }))
}

/// Reads the metrics into their history every interval, on the blocking
/// pool, until the runtime stops.
pub(crate) async fn sample_metrics(state: AppState) {
    let mut tick = actix_web::rt::time::interval(crate::metrics::history::INTERVAL);
    // A late tick is not followed by a burst of catch-up samples.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let state = state.clone();
        if let Err(e) = crate::trace::block(move || state.metrics.sample(&gauges(&state))).await {
            tracing::error!(error = %e, "cannot sample the metrics");
        }
    }
}
