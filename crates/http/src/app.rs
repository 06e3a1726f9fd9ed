//! The app factory: routes from the table, each behind the access gate,
//! plus the Host check (DNS rebinding), CORS and body limits.

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};

use crate::access::{RouteInfo, gate};
use crate::error::{ApiError, json_error, path_error, query_error};
use crate::routes::ROUTES;
use crate::state::AppState;

/// Largest JSON body accepted on these endpoints.
const JSON_LIMIT: usize = 1 << 20;

async fn not_found() -> HttpResponse {
    ApiError::not_found("no such endpoint").error_response()
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
    .error_response()
}

/// Registers every route of the table, grouped by path, each resource behind
/// the access gate, plus extractor error handlers and the JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(JSON_LIMIT)
                .error_handler(|e, _| json_error(e).into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()));

    // Group by path, keeping first-seen order (actix matches in order).
    let mut order: Vec<&'static str> = Vec::new();
    let mut by_path: BTreeMap<&'static str, Vec<&crate::routes::Route>> = BTreeMap::new();
    for route in ROUTES {
        if !by_path.contains_key(route.info.path) {
            order.push(route.info.path);
        }
        by_path.entry(route.info.path).or_default().push(route);
    }
    for path in order {
        let routes = by_path.remove(path).unwrap_or_default();
        let rules: Vec<RouteInfo> = routes.iter().map(|r| r.info).collect();
        let mut resource = web::resource(path)
            .wrap(from_fn(move |req, next| {
                let rules = rules.clone();
                async move { gate(&rules, req, next).await }
            }))
            .default_service(web::to(method_not_allowed));
        for route in routes {
            let method = Method::from_bytes(route.info.method.as_bytes()).unwrap_or(Method::GET);
            resource = resource.route((route.make)().method(method));
        }
        cfg.service(resource);
    }
    cfg.default_service(web::to(not_found));
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => value,
    }
}

/// When bound to loopback, refuse requests whose `Host` is neither a
/// loopback name nor listed in `allowed_hosts`: a web page on another
/// origin cannot reach the server by rebinding its DNS name to 127.0.0.1.
async fn host_check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let bound_loopback = is_loopback_name(&state.settings.host);
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().map(host_name).unwrap_or("").to_owned());
    if let (true, Some(host)) = (bound_loopback, host) {
        let allowed = is_loopback_name(&host)
            || state
                .settings
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host));
        if !allowed {
            return Err(ApiError::forbidden(
                "host_not_allowed",
                format!("Host {host:?} is not allowed; add it to `allowed_hosts` to serve it"),
            )
            .into());
        }
    }
    next.call(req).await.map(|r| r.map_into_boxed_body())
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600);
    if origins.is_empty() {
        // No origin allowed: actix-cors answers preflights with an error.
        return base;
    }
    if origins.iter().any(|o| o == "*") {
        // Any origin, but never with credentials.
        return base.allow_any_origin().send_wildcard();
    }
    origins
        .iter()
        .fold(base, |c, o| c.allowed_origin(o))
        .supports_credentials()
}

/// Builds the HTTP server on an already-bound listener (port 0 in tests).
pub fn serve(state: AppState, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let cors_origins = state.settings.cors_origins.clone();
        let cors_on = !cors_origins.is_empty();
        let state = state.clone();
        App::new()
            .wrap(actix_web::middleware::Condition::new(
                cors_on,
                cors(&cors_origins),
            ))
            .wrap(from_fn(host_check))
            .app_data(web::Data::new(state.clone()))
            .configure(move |cfg| configure(cfg, state))
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_parsed_and_classified() {
        assert_eq!(host_name("localhost:11611"), "localhost");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert!(is_loopback_name("127.0.0.1"));
        assert!(is_loopback_name("::1"));
        assert!(is_loopback_name("LOCALHOST"));
        assert!(is_loopback_name("app.localhost"));
        assert!(!is_loopback_name("evil.example"));
        assert!(!is_loopback_name("0.0.0.0"));
    }
}
