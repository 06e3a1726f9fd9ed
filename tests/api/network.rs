//! Host checks (DNS rebinding) and CORS.

use crate::helpers::{assert_error, spawn_app};

#[test]
fn foreign_host_headers_are_refused_on_loopback() {
    let app = spawn_app(|_| {});
    let res = app
        .client
        .get(app.url("/health"))
        .header("host", "evil.example")
        .send()
        .expect("send");
    assert_error(res, 403, "host_not_allowed");
    let res = app
        .client
        .get(app.url("/health"))
        .header("host", "localhost:11611")
        .send()
        .expect("send");
    assert_eq!(res.status(), 200);
    let allowed = spawn_app(|s| s.allowed_hosts = vec!["box.lan".into()]);
    let res = allowed
        .client
        .get(allowed.url("/health"))
        .header("host", "box.lan:11611")
        .send()
        .expect("send");
    assert_eq!(res.status(), 200);
}

fn get_with_host(app: &crate::helpers::TestApp, host: &str) -> reqwest::blocking::Response {
    app.client
        .get(app.url("/health"))
        .header("host", host)
        .send()
        .expect("send")
}

#[test]
fn allowed_hosts_are_enforced_on_every_interface_too() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.host = "0.0.0.0".into();
        s.allowed_hosts = vec!["box.lan".into()];
    });
    assert_error(get_with_host(&app, "evil.example"), 403, "host_not_allowed");
    assert_error(
        get_with_host(&app, "evil.example:80"),
        403,
        "host_not_allowed",
    );
    assert_eq!(get_with_host(&app, "box.lan:11611").status(), 200);
    assert_eq!(get_with_host(&app, "localhost").status(), 200);
    // Without a list, a server on every interface cannot know its names.
    let open = spawn_app(|s| {
        s.multi_user_mode = true;
        s.host = "0.0.0.0".into();
    });
    assert_eq!(get_with_host(&open, "anything.example").status(), 200);
}

#[test]
fn single_user_mode_does_not_start_on_a_non_loopback_address_unless_allowed() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut settings = offgrid_config::Settings::defaults(home.path().to_owned());
    settings.port = 0;
    settings.bcrypt_cost = 4;
    settings.host = "0.0.0.0".into();
    let auth = offgrid_server::auth_config(&settings);
    let err = match offgrid_server::prepare(settings.clone(), auth) {
        Ok(_) => panic!("single-user mode started on 0.0.0.0"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("allow-remote-single-user"), "{err}");
    settings.allow_remote_single_user = true;
    assert!(offgrid_server::prepare(settings, auth).is_ok());
}

fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::blocking::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/v1/users/me"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .expect("send")
}

#[test]
fn cors_is_off_by_default_and_exact_when_configured() {
    let app = spawn_app(|_| {});
    let res = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://site.example")
        .send()
        .expect("send");
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app(|s| s.cors_origins = vec!["http://ui.example:3000".into()]);
    let ok = preflight(&app, "http://ui.example:3000");
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://ui.example:3000")
    );
    assert_eq!(
        ok.headers()
            .get("access-control-allow-credentials")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let other = preflight(&app, "http://evil.example");
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let any = spawn_app(|s| s.cors_origins = vec!["*".into()]);
    let res = preflight(&any, "http://anything.example");
    assert_eq!(
        res.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    assert!(
        res.headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "never * with credentials"
    );
}
