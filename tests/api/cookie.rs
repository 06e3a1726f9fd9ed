//! The session cookie when the server is served over HTTPS
//! (`cookie_secure`): `Secure`, the `__Host-` prefix, and only that name
//! accepted.

use serde_json::json;

use crate::helpers::{ADMIN, ADMIN_PASSWORD, assert_error, spawn_app};

fn set_cookie(res: &reqwest::blocking::Response) -> String {
    res.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned()
}

#[test]
fn behind_tls_the_cookie_is_secure_with_the_host_prefix() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.cookie_secure = true;
    });
    app.setup_admin();
    let res = app.login(ADMIN, ADMIN_PASSWORD);
    assert_eq!(res.status(), 200);
    let cookie = set_cookie(&res);
    assert!(
        cookie.starts_with("__Host-offgrid_session=v4.local."),
        "{cookie}"
    );
    for attribute in ["; Secure", "; Path=/", "; HttpOnly", "; SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let token = pair.split_once('=').expect("=").1.to_owned();

    // The name in force authenticates; the plain-HTTP name does not.
    let with = |cookie: &str| {
        app.client
            .get(app.url("/v1/users"))
            .header("cookie", cookie)
            .send()
            .expect("send")
    };
    assert_eq!(with(&pair).status(), 200);
    assert_error(
        with(&format!("offgrid_session={token}")),
        401,
        "unauthorized",
    );

    // Logout clears the same cookie, with the same attributes.
    let res = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", &pair)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({}))
        .send()
        .expect("logout");
    assert_eq!(res.status(), 200);
    let cleared = set_cookie(&res);
    assert!(cleared.starts_with("__Host-offgrid_session=;"), "{cleared}");
    assert!(
        cleared.contains("; Secure") && cleared.contains("; Path=/"),
        "{cleared}"
    );
}

#[test]
fn over_plain_http_the_cookie_keeps_its_name_and_is_not_secure() {
    let app = spawn_app(|s| s.multi_user_mode = true);
    app.setup_admin();
    let cookie = set_cookie(&app.login(ADMIN, ADMIN_PASSWORD));
    assert!(cookie.starts_with("offgrid_session="), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
}
