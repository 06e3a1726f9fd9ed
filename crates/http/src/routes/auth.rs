//! `/v1/auth/*` and `/v1/users/me`: setup, login, logout, who am I,
//! change password.

use crate::wire;
use actix_web::{HttpRequest, HttpResponse, web};
use offgrid_auth::{AccountInput, LoginRequest, SetupProof};
use offgrid_domain::Role;
use serde::Deserialize;

use crate::access::Caller;
use crate::app::{host_name, is_loopback_name};
use crate::code::ErrorCode;
use crate::cookie::{clearing_cookie, device_cookie, device_cookie_name, session_cookie};
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetupBody {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    /// The one-time code the server printed at start-up; needed when the
    /// request does not come from this machine.
    #[serde(default)]
    setup_code: Option<String>,
}

/// Whether the TCP peer is this machine (loopback, IPv4-mapped included).
fn is_local_peer(addr: Option<&str>) -> bool {
    addr.and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.to_canonical().is_loopback())
}

/// Headers a reverse proxy adds: their presence means the loopback peer is
/// a proxy relaying someone else.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether a request may be trusted as coming from someone on this machine:
/// the server listens on loopback only (bound to any other address, a
/// loopback peer may be a DNS-rebinding page in a local browser), the peer
/// is loopback, the `Host` header names loopback (not a rebound or
/// proxied name), and no proxy says it is relaying another client.
fn is_local_request(
    req: &HttpRequest,
    settings: &offgrid_config::Settings,
    peer: Option<&str>,
) -> bool {
    let host_is_loopback = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| is_loopback_name(host_name(h)));
    is_loopback_name(&settings.host)
        && is_local_peer(peer)
        && host_is_loopback
        && FORWARDING_HEADERS
            .iter()
            .all(|name| !req.headers().contains_key(*name))
}

/// `POST /v1/auth/setup`: creates the first administrator, once. From this
/// machine as is (see [`is_local_request`]); otherwise only with the setup
/// code printed at start-up, so whoever reaches the port first cannot take
/// the server.
#[utoipa::path(post, path = "/v1/auth/setup", tag = "auth", request_body = SetupBody,
    responses((status = 201, description = "The first administrator", body = crate::wire::SetupResponse)))]
pub(crate) async fn setup(
    state: web::Data<AppState>,
    client: Client,
    http: HttpRequest,
    body: JsonObject<SetupBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let auth = state.auth.clone();
    let local = is_local_request(&http, &state.settings, client.addr.as_deref());
    if body.setup_code.is_none() && !local {
        let open = crate::trace::block(move || auth.setup_required()).await??;
        return Err(if open {
            ApiError::forbidden(
                ErrorCode::SetupCodeRequired,
                concat!(
                    "first-run setup needs the setup code printed when the server started ",
                    "(send it as `setup_code`) unless it comes straight from this machine ",
                    "(not through a proxy) to a server bound to loopback; or run ",
                    "`offgrid-admin setup` on the server",
                ),
            )
        } else {
            offgrid_auth::AuthError::SetupDone.into()
        });
    }
    let auth = state.auth.clone();
    let expected = state.setup_code();
    let actor = client.actor(None);
    let user = crate::trace::block(move || {
        let proof = match &body.setup_code {
            Some(given) => SetupProof::Code {
                expected: expected.as_ref(),
                given,
            },
            None => SetupProof::Local,
        };
        auth.setup(
            AccountInput {
                username: body.username,
                password: body.password,
                email: body.email,
                display_name: body.display_name,
                role: Role::Admin,
            },
            proof,
            &actor,
        )
    })
    .await??;
    state.mark_admin_exists();
    Ok(HttpResponse::Created().json(wire::SetupResponse { user }))
}

/// `username` may also be sent as `email` or `login`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginBody {
    #[serde(alias = "email", alias = "login")]
    username: String,
    password: String,
    #[serde(default)]
    remember_me: bool,
}

/// `POST /v1/auth/login`: returns `{token, expires_at, user}` and sets the
/// HttpOnly session cookie for the browser UI.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Signed in", body = crate::wire::LoginResponse)))]
pub(crate) async fn login(
    state: web::Data<AppState>,
    client: Client,
    http: HttpRequest,
    body: JsonObject<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let device = http
        .cookie(device_cookie_name(&state.settings))
        .map(|c| c.value().to_owned());
    let auth = state.auth.clone();
    let request = LoginRequest {
        login: body.username,
        password: body.password,
        remember_me: body.remember_me,
        client_addr: client.addr.clone(),
        user_agent: client.user_agent.clone(),
        device,
    };
    let outcome = crate::trace::block(move || auth.login(&request)).await??;
    Ok(signed_in(&state.settings, outcome))
}

/// The answer to a login (or an accepted invitation): the token, its
/// expiry and the account, with the session and device cookies.
pub(crate) fn signed_in(
    settings: &offgrid_config::Settings,
    outcome: offgrid_auth::LoginOutcome,
) -> HttpResponse {
    let max_age = outcome.expires_at.0 - offgrid_auth::service::now().0;
    let cookie = session_cookie(settings, outcome.token.clone(), max_age);
    HttpResponse::Ok()
        .cookie(cookie)
        .cookie(device_cookie(settings, outcome.device))
        .json(wire::LoginResponse {
            token: outcome.token,
            token_type: "bearer".to_owned(),
            expires_at: outcome.expires_at,
            user: outcome.user,
        })
}

/// `POST /v1/auth/logout`: revokes the session token at once. With an API
/// key: 400 `not_a_session`, nothing revoked.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 200, description = "The session is revoked", body = crate::wire::Success)))]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    crate::trace::block(move || auth.logout(&caller.principal, &actor)).await??;
    Ok(HttpResponse::Ok()
        .cookie(clearing_cookie(&state.settings))
        .json(wire::Success::DONE))
}

/// `GET /v1/auth/me`: the caller.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth",
    responses((status = 200, description = "The caller", body = crate::wire::Me)))]
pub(crate) async fn me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let user = match (caller.user, &caller.principal.user_id) {
        (Some(user), _) => Some(user),
        (None, Some(id)) => {
            let auth = state.auth.clone();
            let id = id.clone();
            Some(
                crate::trace::block(move || auth.repos().users.get(&id))
                    .await?
                    .map_err(ApiError::from)?,
            )
        }
        (None, None) => None,
    };
    let principal = &caller.principal;
    let permissions: Vec<_> = offgrid_domain::Permission::ALL
        .into_iter()
        .filter(|p| offgrid_policy::authorize(principal, *p).is_ok())
        .collect();
    Ok(HttpResponse::Ok().json(wire::Me {
        user,
        authenticated: principal.is_authenticated(),
        role: principal.role,
        permissions,
        mode: wire::Mode::of(state.settings.multi_user_mode),
    }))
}

/// `GET /v1/users/me`: the caller, as `GET /v1/auth/me`.
#[utoipa::path(get, path = "/v1/users/me", tag = "auth",
    responses((status = 200, description = "The caller", body = crate::wire::Me)))]
pub(crate) async fn users_me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    me(state, caller).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /v1/auth/change-password`: needs the current password; ends the
/// caller's other sessions and API keys.
#[utoipa::path(post, path = "/v1/auth/change-password", tag = "auth", request_body = ChangePasswordBody,
    responses((status = 200, description = "Changed", body = crate::wire::Success)))]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let auth = state.auth.clone();
    let actor = client.actor(Some(&caller));
    crate::trace::block(move || {
        auth.change_password(
            &caller.principal,
            &body.current_password,
            &body.new_password,
            &actor,
        )
    })
    .await??;
    Ok(HttpResponse::Ok().json(wire::Success::DONE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_local() {
        for local in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_local_peer(Some(local)), "{local}");
        }
        for remote in [
            "10.0.0.1",
            "192.168.1.20",
            "::ffff:10.0.0.1",
            "fe80::1",
            "junk",
        ] {
            assert!(!is_local_peer(Some(remote)), "{remote}");
        }
        assert!(!is_local_peer(None));
    }

    #[test]
    fn only_direct_loopback_requests_to_a_loopback_server_are_local() {
        use actix_web::test::TestRequest;
        let settings = offgrid_config::Settings::defaults(std::path::PathBuf::new());
        let peer = Some("127.0.0.1");
        let direct = TestRequest::default().insert_header(("host", "127.0.0.1:11611"));
        assert!(is_local_request(&direct.to_http_request(), &settings, peer));
        for (name, value) in [
            ("host", "box.lan"),
            ("host", "evil.example:11611"),
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
        ] {
            let req = TestRequest::default()
                .insert_header(("host", "localhost"))
                .insert_header((name, value))
                .to_http_request();
            assert!(!is_local_request(&req, &settings, peer), "{name}: {value}");
        }
        let no_host = TestRequest::default().to_http_request();
        assert!(!is_local_request(&no_host, &settings, peer));
        let mut wide = settings.clone();
        wide.host = "0.0.0.0".into();
        let req = TestRequest::default()
            .insert_header(("host", "127.0.0.1"))
            .to_http_request();
        assert!(!is_local_request(&req, &wide, peer));
        assert!(!is_local_request(&req, &settings, Some("10.0.0.1")));
    }
}
