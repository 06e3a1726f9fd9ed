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
use crate::code::ErrorCode;
use crate::error::{ApiError, json_error, path_error, query_error};
use crate::routes::ROUTES;
use crate::state::AppState;

/// Largest JSON body accepted on these endpoints.
const JSON_LIMIT: usize = 1 << 20;

/// The fallback: the web UI's entry page for its page paths, else the
/// JSON 404.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    crate::ui::page(&req)
        .unwrap_or_else(|| ApiError::not_found("no such endpoint").error_response())
}

/// Headers every answer carries (a handler's own win): no MIME sniffing, no
/// referrer, no framing, no opener, and, unless the answer is the UI's
/// page (which sets its own), a Content-Security-Policy that allows
/// nothing, so a JSON or file answer opened in a tab runs nothing.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ))
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        crate::code::ErrorCode::MethodNotAllowed,
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
            if method == Method::GET {
                // HEAD answers as GET does, without the body: the handler
                // runs and actix discards what it produced (no GET route
                // streams). Clients probe `HEAD /api/version` and the like.
                resource = resource.route((route.make)().method(Method::HEAD));
            }
            resource = resource.route((route.make)().method(method));
        }
        if path.starts_with("/api/") {
            // Ollama's routes answer errors Ollama's way (outside the
            // gate, so its denials are rewritten too).
            cfg.service(resource.wrap(from_fn(crate::routes::ollama::rewrite_error)));
        } else {
            cfg.service(resource);
        }
    }
    // Ollama's routes this server does not have: Ollama's 404.
    cfg.service(web::resource("/api/{rest:.*}").to(crate::routes::ollama::unknown));
    crate::ui::configure(cfg);
    cfg.default_service(web::to(not_found));
}

/// Whether `host` (a bind address or a `Host` name, brackets allowed)
/// names this machine's loopback interface.
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
pub(crate) fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => value,
    }
}

/// Whether a request naming `host` in its `Host` header is served.
///
/// Bound to loopback, or whenever `allowed_hosts` is set, only loopback
/// names, the names in `allowed_hosts` and the bound address itself are:
/// a web page on another origin cannot reach the server by rebinding its
/// DNS name to the server's address. Bound elsewhere without a list, any
/// name is (the server cannot know its names).
fn host_allowed(settings: &offgrid_config::Settings, host: &str) -> bool {
    if !is_loopback_name(&settings.host) && settings.allowed_hosts.is_empty() {
        return true;
    }
    let bound = settings.host.trim_start_matches('[').trim_end_matches(']');
    let wildcard = bound.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    is_loopback_name(host)
        || settings
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
        || (!wildcard && bound.eq_ignore_ascii_case(host))
}

/// Refuses requests whose `Host` is not served (see [`host_allowed`]).
async fn host_check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().map(host_name).unwrap_or("").to_owned());
    if let Some(host) = host
        && !host_allowed(&state.settings, &host)
    {
        return Err(ApiError::forbidden(
            ErrorCode::HostNotAllowed,
            format!("Host {host:?} is not allowed; add it to `allowed_hosts` to serve it"),
        )
        .into());
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
    // The UI's files are gzipped once, here, not on an executor thread.
    offgrid_ui::precompress();
    actix_web::rt::spawn(crate::routes::system::sample_metrics(state.clone()));
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
            .wrap(security_headers())
            // Outermost: every request gets its span, refusals included.
            .wrap(from_fn(crate::trace::request_span))
            .app_data(web::Data::new(state.clone()))
            .configure(move |cfg| configure(cfg, state))
    })
    .workers(workers.max(1))
    .on_connect(|conn, data| {
        if let Some(socket) = crate::peer::PeerSocket::from_connection(conn) {
            data.insert(socket);
        }
    })
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

    #[test]
    fn allowed_hosts_are_enforced_whatever_the_bind_address() {
        let mut s = offgrid_config::Settings::defaults(std::path::PathBuf::new());
        // Loopback: loopback names only, until names are listed.
        assert!(host_allowed(&s, "localhost"));
        assert!(!host_allowed(&s, "evil.example"));
        s.allowed_hosts = vec!["box.lan".into()];
        assert!(host_allowed(&s, "BOX.lan"));
        assert!(!host_allowed(&s, "evil.example"));
        // Any address with a list: the list, loopback and the address.
        s.host = "192.168.1.5".into();
        assert!(host_allowed(&s, "box.lan"));
        assert!(host_allowed(&s, "192.168.1.5"));
        assert!(host_allowed(&s, "127.0.0.1"));
        assert!(!host_allowed(&s, "evil.example"));
        s.host = "0.0.0.0".into();
        assert!(!host_allowed(&s, "0.0.0.0"));
        assert!(!host_allowed(&s, "evil.example"));
        // No list on a non-loopback address: any name.
        s.allowed_hosts.clear();
        assert!(host_allowed(&s, "evil.example"));
    }
}
