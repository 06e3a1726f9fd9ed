//! Access rules per route and the gate that enforces them.
//!
//! Every route is declared in [`crate::routes::ROUTES`] with an [`Access`].
//! The app wraps each resource in [`gate`], which, before any handler runs,
//! refuses user-management routes in single-user mode, resolves the caller
//! (single-user owner, token, API key, cookie or anonymous guest), applies
//! the cookie CSRF check and authorizes the caller against the policy.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use offgrid_domain::{Permission, Principal};

use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (setup, login, health, system config,
    /// static UI).
    Public,
    /// Any principal, the anonymous guest included when guests are allowed.
    AnyPrincipal,
    /// A principal holding the permission.
    Requires(Permission),
}

/// One row of the route table, as tests and docs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern, e.g. `/v1/users/{id}`.
    pub path: &'static str,
    /// Access rule.
    pub access: Access,
    /// Answered only in multi-user mode (404 in single-user mode).
    pub multi_user_only: bool,
}

/// Every registered route with its access rule.
pub fn route_table() -> Vec<RouteInfo> {
    crate::routes::ROUTES.iter().map(|r| r.info).collect()
}

/// The resolved caller, stored in request extensions by the gate.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    /// The account, when it was loaded while authenticating.
    pub user: Option<offgrid_domain::user::User>,
}

enum Presented {
    None,
    Bearer(String),
    Cookie(String),
}

fn presented_credential(req: &ServiceRequest, cookie_name: &str) -> Result<Presented, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(ApiError::unauthenticated(
                "Authorization header must be `Bearer <token or API key>`",
            ));
        }
        return Ok(Presented::Bearer(rest.trim().to_owned()));
    }
    if let Some(cookie) = req.cookie(cookie_name) {
        return Ok(Presented::Cookie(cookie.value().to_owned()));
    }
    Ok(Presented::None)
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A cookie-authenticated request that changes state must come from our own
/// origin: `Sec-Fetch-Site: same-origin` (or `none`, typed by the user), or
/// an `Origin` whose host is the request's `Host`.
fn same_origin(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

async fn resolve(state: &AppState, req: &ServiceRequest) -> Result<Caller, ApiError> {
    if !state.settings.multi_user_mode {
        return Ok(Caller {
            principal: Principal::local_owner(),
            user: None,
        });
    }
    let cookie_name = crate::cookie::session_cookie_name(&state.settings);
    let (credential, from_cookie) = match presented_credential(req, cookie_name)? {
        Presented::Bearer(value) => (value, false),
        Presented::Cookie(value) => (value, true),
        Presented::None if state.settings.anonymous_allowed() => {
            return Ok(Caller {
                principal: Principal::anonymous_guest(),
                user: None,
            });
        }
        Presented::None => {
            return Err(ApiError::unauthenticated(
                "authentication required: send `Authorization: Bearer <token or API key>`",
            ));
        }
    };
    if from_cookie && !is_safe_method(req.method()) && !same_origin(req) {
        return Err(ApiError::forbidden(
            ErrorCode::CrossOriginRequest,
            "cross-origin request with a session cookie refused; use an Authorization header",
        ));
    }
    let auth = state.auth.clone();
    let resolved = crate::trace::block(move || {
        if from_cookie {
            auth.authenticate_token(&credential, true)
        } else {
            auth.authenticate_bearer(&credential)
        }
    })
    .await??;
    Ok(Caller {
        principal: resolved.principal,
        user: Some(resolved.user),
    })
}

fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError> {
    let Access::Requires(permission) = access else {
        return Ok(());
    };
    match offgrid_policy::authorize(&caller.principal, permission) {
        Ok(()) => Ok(()),
        Err(_) if !caller.principal.is_authenticated() => Err(ApiError::unauthenticated(
            "authentication required for this endpoint",
        )),
        Err(denied) => Err(ApiError::forbidden(
            ErrorCode::InsufficientPermissions,
            format!(
                "the {} role does not have the `{}` permission",
                denied.role,
                serde_json::to_value(denied.permission)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// The per-resource middleware: looks up the method's rule in `rules` and
/// enforces it. Methods without a rule fall through to the resource's 405.
pub(crate) async fn gate(
    rules: &[RouteInfo],
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    // HEAD is GET without the body (registered beside every GET route).
    let method = match req.method().as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let rule = rules.iter().find(|r| r.method == method).copied();
    let Some(rule) = rule else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    // A refusal is an answer (not an error), so the request metrics and
    // log see it with its route.
    match admit(rule, &req).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
        }
        Ok(None) => {}
        Err(e) => return Ok(req.error_response(e)),
    }
    next.call(req).await.map(|r| r.map_into_boxed_body())
}

/// Whether `req` may use the route `rule` describes: the caller it acts
/// as (none for public routes), or the refusal.
async fn admit(rule: RouteInfo, req: &ServiceRequest) -> Result<Option<Caller>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    if rule.multi_user_only && !state.settings.multi_user_mode {
        return Err(ApiError::multi_user_disabled());
    }
    if rule.access == Access::Public {
        return Ok(None);
    }
    if rule.path == crate::routes::METRICS_PATH && scrape_token_matches(&state, req) {
        // A Prometheus scraper with the configured token: let through to
        // this route, acting as no one.
        return Ok(None);
    }
    let caller = resolve(&state, req).await?;
    if let Some(id) = &caller.principal.user_id {
        crate::trace::record_user(id);
    }
    // `benchmark_users`: the benchmark route is open to everyone who may
    // keep sessions of their own (users), not only to administrators.
    let access = if rule.path == crate::routes::BENCHMARK_PATH
        && rule.method == "POST"
        && state.settings.benchmark_users
    {
        Access::Requires(offgrid_domain::Permission::OwnSessions)
    } else {
        rule.access
    };
    authorize(&caller, access)?;
    Ok(Some(caller))
}

/// Whether the request's bearer credential is the configured
/// `metrics_token` (compared in constant time).
fn scrape_token_matches(state: &AppState, req: &ServiceRequest) -> bool {
    let Some(token) = &state.settings.metrics_token else {
        return false;
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    use subtle::ConstantTimeEq;
    presented.len() == token.expose().len()
        && bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()))
}
