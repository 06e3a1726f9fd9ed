//! The route table: every endpoint, its method, path and access rule.
//! Order matters where paths overlap (`/v1/users/me` before
//! `/v1/users/{id}`): actix matches resources in registration order.

mod audit;
mod auth;
mod benchmark;
mod invitations;
mod keys;
mod models;
pub(crate) mod ollama;
pub(crate) mod openai;
mod openapi;
mod presets;
mod queue;
mod quota;
pub(crate) mod rag;
pub(crate) mod sessions;
pub(crate) mod system;
mod usage;
mod users;

use actix_web::web;
use offgrid_domain::Permission as P;

use crate::access::{Access, RouteInfo};
use crate::code::ErrorCode;

/// A route: its public description and how to build its handler.
pub(crate) struct Route {
    pub info: RouteInfo,
    pub make: fn() -> actix_web::Route,
}

macro_rules! route {
    ($method:literal, $path:literal, $access:expr, multi_user_only: $multi:expr, $handler:path) => {
        Route {
            info: RouteInfo {
                method: $method,
                path: $path,
                access: $access,
                multi_user_only: $multi,
            },
            make: || web::route().to($handler),
        }
    };
}

use Access::{AnyPrincipal, Public, Requires};

/// Every endpoint.
pub(crate) static ROUTES: &[Route] = &[
    route!("GET", "/health", Public, multi_user_only: false, system::health),
    route!("GET", "/v1/system/config", Public, multi_user_only: false, system::config),
    route!("GET", "/openapi.json", Public, multi_user_only: false, openapi::document),
    // Administrators, or a scraper with `metrics_token` (see the gate)
    route!("GET", "/metrics", Requires(P::ViewMetrics), multi_user_only: false, system::metrics),
    route!("GET", "/v1/metrics/history", Requires(P::ViewMetrics), multi_user_only: false, system::metrics_history),
    // authentication
    route!("POST", "/v1/auth/setup", Public, multi_user_only: true, auth::setup),
    route!("POST", "/v1/auth/login", Public, multi_user_only: true, auth::login),
    route!("POST", "/v1/auth/accept-invite", Public, multi_user_only: true, invitations::accept),
    route!("POST", "/v1/auth/logout", AnyPrincipal, multi_user_only: true, auth::logout),
    route!("GET", "/v1/auth/me", AnyPrincipal, multi_user_only: false, auth::me),
    route!("POST", "/v1/auth/change-password", Requires(P::ManageOwnAccount), multi_user_only: true, auth::change_password),
    // the caller's own account
    route!("GET", "/v1/users/me", AnyPrincipal, multi_user_only: false, auth::users_me),
    route!("GET", "/v1/users/me/quota", AnyPrincipal, multi_user_only: false, quota::me),
    route!("GET", "/v1/users/me/api-keys", Requires(P::ManageOwnAccount), multi_user_only: true, keys::list_mine),
    route!("POST", "/v1/users/me/api-keys", Requires(P::ManageOwnAccount), multi_user_only: true, keys::create_mine),
    route!("DELETE", "/v1/users/me/api-keys/{key_id}", Requires(P::ManageOwnAccount), multi_user_only: true, keys::revoke_mine),
    // administration
    route!("GET", "/v1/users", Requires(P::ManageUsers), multi_user_only: true, users::list),
    route!("POST", "/v1/users", Requires(P::ManageUsers), multi_user_only: true, users::create),
    route!("GET", "/v1/users/{id}", Requires(P::ManageUsers), multi_user_only: true, users::get),
    route!("PATCH", "/v1/users/{id}", Requires(P::ManageUsers), multi_user_only: true, users::update),
    route!("DELETE", "/v1/users/{id}", Requires(P::ManageUsers), multi_user_only: true, users::delete),
    route!("POST", "/v1/users/{id}/reset-password", Requires(P::ManageUsers), multi_user_only: true, users::reset_password),
    route!("GET", "/v1/users/{id}/quota", Requires(P::ManageUsers), multi_user_only: true, quota::get),
    route!("PUT", "/v1/users/{id}/quota", Requires(P::ManageUsers), multi_user_only: true, quota::set),
    route!("POST", "/v1/users/{id}/quota/reset", Requires(P::ManageUsers), multi_user_only: true, quota::reset),
    route!("GET", "/v1/users/{id}/api-keys", Requires(P::ManageUsers), multi_user_only: true, keys::list_for_user),
    route!("POST", "/v1/users/{id}/api-keys", Requires(P::ManageUsers), multi_user_only: true, keys::create_for_user),
    route!("DELETE", "/v1/users/{id}/api-keys/{key_id}", Requires(P::ManageUsers), multi_user_only: true, keys::revoke_for_user),
    route!("GET", "/v1/invitations", Requires(P::ManageUsers), multi_user_only: true, invitations::list),
    route!("POST", "/v1/invitations", Requires(P::ManageUsers), multi_user_only: true, invitations::create),
    route!("DELETE", "/v1/invitations/{id}", Requires(P::ManageUsers), multi_user_only: true, invitations::revoke),
    route!("GET", "/v1/audit", Requires(P::ViewAudit), multi_user_only: true, audit::list),
    // OpenAI-compatible inference
    route!("GET", "/v1/models", Requires(P::ViewModels), multi_user_only: false, models::list),
    route!("POST", "/v1/models", Requires(P::ManageModels), multi_user_only: false, models::import),
    route!("GET", "/v1/models/{id}", Requires(P::ViewModels), multi_user_only: false, models::get),
    route!("DELETE", "/v1/models/{id}", Requires(P::ManageModels), multi_user_only: false, models::remove),
    route!("POST", "/v1/chat/completions", Requires(P::Chat), multi_user_only: false, openai::chat_completions),
    route!("POST", "/v1/completions", Requires(P::Chat), multi_user_only: false, openai::completions),
    route!("POST", "/v1/embeddings", Requires(P::Chat), multi_user_only: false, openai::embeddings),
    // Administrators; users too with `benchmark_users` (see the gate)
    route!("POST", "/v1/benchmark", Requires(P::ManageModels), multi_user_only: false, benchmark::run),
    route!("GET", "/v1/benchmark", Requires(P::ViewModels), multi_user_only: false, benchmark::list),
    route!("GET", "/v1/queue", Requires(P::Chat), multi_user_only: false, queue::list),
    route!("DELETE", "/v1/queue/{id}", Requires(P::Chat), multi_user_only: false, queue::cancel),
    route!("GET", "/v1/usage", Requires(P::ManageOwnAccount), multi_user_only: false, usage::usage),
    // chat sessions: creating needs own_sessions; everything else is open
    // to account holders, and the workspace service checks each session
    route!("POST", "/v1/sessions", Requires(P::OwnSessions), multi_user_only: false, sessions::create),
    route!("GET", "/v1/sessions", ACCOUNT_HOLDER, multi_user_only: false, sessions::list),
    route!("GET", "/v1/sessions/{id}", ACCOUNT_HOLDER, multi_user_only: false, sessions::get),
    route!("PATCH", "/v1/sessions/{id}", ACCOUNT_HOLDER, multi_user_only: false, sessions::update),
    route!("DELETE", "/v1/sessions/{id}", ACCOUNT_HOLDER, multi_user_only: false, sessions::delete),
    route!("POST", "/v1/sessions/{id}/messages", ACCOUNT_HOLDER, multi_user_only: false, sessions::add_message),
    route!("GET", "/v1/sessions/{id}/export", ACCOUNT_HOLDER, multi_user_only: false, sessions::export),
    route!("POST", "/v1/sessions/{id}/shares", ACCOUNT_HOLDER, multi_user_only: true, sessions::share),
    route!("GET", "/v1/sessions/{id}/shares", ACCOUNT_HOLDER, multi_user_only: true, sessions::shares),
    route!("DELETE", "/v1/sessions/{id}/shares/{user_id}", ACCOUNT_HOLDER, multi_user_only: true, sessions::unshare),
    // RAG: creating a collection needs use_rag; the rest is checked per
    // collection by the workspace service
    route!("POST", "/v1/rag/collections", Requires(P::UseRag), multi_user_only: false, rag::create),
    route!("GET", "/v1/rag/collections", ACCOUNT_HOLDER, multi_user_only: false, rag::list),
    route!("GET", "/v1/rag/collections/{id}", ACCOUNT_HOLDER, multi_user_only: false, rag::get),
    route!("PATCH", "/v1/rag/collections/{id}", ACCOUNT_HOLDER, multi_user_only: false, rag::update),
    route!("DELETE", "/v1/rag/collections/{id}", ACCOUNT_HOLDER, multi_user_only: false, rag::delete),
    route!("POST", "/v1/rag/collections/{id}/documents", ACCOUNT_HOLDER, multi_user_only: false, rag::upload),
    route!("GET", "/v1/rag/collections/{id}/documents", ACCOUNT_HOLDER, multi_user_only: false, rag::documents),
    route!("GET", "/v1/rag/collections/{id}/documents/{document_id}", ACCOUNT_HOLDER, multi_user_only: false, rag::document),
    route!("DELETE", "/v1/rag/collections/{id}/documents/{document_id}", ACCOUNT_HOLDER, multi_user_only: false, rag::delete_document),
    route!("POST", "/v1/rag/collections/{id}/shares", ACCOUNT_HOLDER, multi_user_only: true, rag::share),
    route!("GET", "/v1/rag/collections/{id}/shares", ACCOUNT_HOLDER, multi_user_only: true, rag::shares),
    route!("DELETE", "/v1/rag/collections/{id}/shares/{user_id}", ACCOUNT_HOLDER, multi_user_only: true, rag::unshare),
    route!("POST", "/v1/rag/search", ACCOUNT_HOLDER, multi_user_only: false, rag::search),
    // Ollama's native API (errors as `{"error": "..."}`, see
    // `ollama::rewrite_error`)
    route!("GET", "/api/version", Public, multi_user_only: false, ollama::version),
    route!("GET", "/api/tags", Requires(P::ViewModels), multi_user_only: false, ollama::tags),
    route!("POST", "/api/show", Requires(P::ViewModels), multi_user_only: false, ollama::show),
    route!("GET", "/api/ps", Requires(P::ViewModels), multi_user_only: false, ollama::ps),
    route!("POST", "/api/pull", Requires(P::ViewModels), multi_user_only: false, ollama::pull),
    route!("DELETE", "/api/delete", Requires(P::ManageModels), multi_user_only: false, ollama::delete),
    route!("POST", "/api/generate", Requires(P::Chat), multi_user_only: false, ollama::generate),
    route!("POST", "/api/chat", Requires(P::Chat), multi_user_only: false, ollama::chat),
    route!("POST", "/api/embed", Requires(P::Chat), multi_user_only: false, ollama::embed),
    route!("POST", "/api/embeddings", Requires(P::Chat), multi_user_only: false, ollama::embeddings),
    route!("POST", "/v1/presets", Requires(P::OwnSessions), multi_user_only: false, presets::create),
    route!("GET", "/v1/presets", ACCOUNT_HOLDER, multi_user_only: false, presets::list),
    route!("GET", "/v1/presets/{id}", ACCOUNT_HOLDER, multi_user_only: false, presets::get),
    route!("PATCH", "/v1/presets/{id}", ACCOUNT_HOLDER, multi_user_only: false, presets::update),
    route!("DELETE", "/v1/presets/{id}", ACCOUNT_HOLDER, multi_user_only: false, presets::delete),
];

/// The metrics route's path (the gate lets the scrape token through there).
pub(crate) const METRICS_PATH: &str = "/metrics";

/// The benchmark route's path (the gate opens it to users with
/// `benchmark_users`).
pub(crate) const BENCHMARK_PATH: &str = "/v1/benchmark";

/// Routes for anyone with an account of their own (every role but Guest,
/// and never the anonymous guest): what they may do with a resource is
/// decided per resource by the service behind the route.
const ACCOUNT_HOLDER: Access = Requires(P::ManageOwnAccount);

/// Default page size of list endpoints.
pub(crate) fn default_limit() -> i64 {
    50
}

/// Paging bounds shared by list endpoints.
pub(crate) struct Paging;

impl Paging {
    /// Checks the bounds: 1 ≤ limit ≤ 200, offset ≥ 0.
    pub fn checked(limit: i64, offset: i64) -> Result<(i64, i64), crate::ApiError> {
        if !(1..=200).contains(&limit) {
            return Err(crate::ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "limit must be between 1 and 200",
            ));
        }
        if offset < 0 {
            return Err(crate::ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "offset must not be negative",
            ));
        }
        Ok((limit, offset))
    }
}
