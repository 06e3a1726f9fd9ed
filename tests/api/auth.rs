//! Setup, login, tokens, cookies, logout, password change, throttling.

use serde_json::json;

use crate::helpers::{ADMIN, ADMIN_PASSWORD, assert_error, body, password_of, spawn_multi_user};

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse_time(v: &serde_json::Value) -> i64 {
    let text = v.as_str().expect("time string");
    offgrid_domain::Timestamp::parse_rfc3339(text)
        .expect("rfc3339")
        .0
}

#[test]
fn setup_creates_the_first_admin_once() {
    let app = spawn_multi_user();
    let res = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
    );
    assert_eq!(res.status(), 201);
    assert_eq!(body(res)["user"]["role"], "admin");
    let again = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": "x2", "password": ADMIN_PASSWORD}),
    );
    assert_error(again, 409, "setup_complete");
}

#[test]
fn setup_with_a_code_needs_the_servers_code() {
    // From this machine no code is needed, but one that is given must be
    // right. (Remote peers without a code get `setup_code_required`: see
    // the unit tests of `is_local_request` and the proxy tests below.)
    let app = spawn_multi_user();
    let code = app.setup_code.clone().expect("a code while setup is open");
    let res = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": ADMIN, "password": ADMIN_PASSWORD, "setup_code": "ABCDE-FGHJK-MNPQR-STUVW"}),
    );
    assert_error(res, 403, "invalid_setup_code");
    let res = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": ADMIN, "password": ADMIN_PASSWORD, "setup_code": code.to_lowercase()}),
    );
    assert_eq!(res.status(), 201);
    let again = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": "x2", "password": ADMIN_PASSWORD, "setup_code": code}),
    );
    assert_error(again, 409, "setup_complete");
}

#[test]
fn setup_through_a_proxy_or_under_a_foreign_host_needs_the_code() {
    // A reverse proxy on this machine makes every client a loopback peer,
    // and a DNS-rebinding page reaches the server under another name: then
    // the peer address proves nothing and the setup code is required.
    let app = crate::helpers::spawn_app(|s| {
        s.multi_user_mode = true;
        s.allowed_hosts = vec!["box.lan".into()];
    });
    let admin = json!({"username": ADMIN, "password": ADMIN_PASSWORD});
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
        ("host", "box.lan"),
    ] {
        let res = app
            .request("POST", "/v1/auth/setup", None)
            .header(name, value)
            .json(&admin)
            .send()
            .expect("send");
        assert_error(res, 403, "setup_code_required");
    }
    let code = app.setup_code.clone().expect("a code while setup is open");
    let res = app
        .request("POST", "/v1/auth/setup", None)
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD, "setup_code": code}))
        .send()
        .expect("send");
    assert_eq!(res.status(), 201);
}

#[test]
fn setup_on_a_server_bound_beyond_loopback_needs_the_code() {
    // Bound to every address, a loopback peer may be a rebinding page in
    // the operator's own browser.
    let app = crate::helpers::spawn_app(|s| {
        s.multi_user_mode = true;
        s.host = "0.0.0.0".into();
    });
    let port = app.base.rsplit(':').next().expect("port").to_owned();
    let res = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/auth/setup"))
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .expect("send");
    assert_error(res, 403, "setup_code_required");
}

#[test]
fn bad_setup_input_gets_clear_errors() {
    let app = spawn_multi_user();
    let short = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": "root", "password": "short"}),
    );
    let b = assert_error(short, 422, "invalid_value");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("password")
    );
    let res = app
        .request("POST", "/v1/auth/setup", None)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .expect("send");
    assert_error(res, 400, "invalid_json");
    let res = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": 5, "password": "long enough"}),
    );
    // Valid JSON of the wrong shape: `invalid_request` on every route.
    let b = assert_error(res, 400, "invalid_request");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("string"),
        "{b}"
    );
    let res = app
        .request("POST", "/v1/auth/setup", None)
        .body("x")
        .send()
        .expect("send");
    assert_error(res, 415, "unsupported_media_type");
    let huge = "a".repeat(2 << 20);
    let res = app.post(
        "/v1/auth/setup",
        None,
        json!({"username": huge, "password": "long enough"}),
    );
    assert_error(res, 413, "payload_too_large");
    assert_eq!(
        body(app.get("/v1/system/config", None))["setup_required"],
        true,
        "nothing was created"
    );
}

#[test]
fn login_returns_a_token_with_expiry_and_an_http_only_cookie() {
    let app = spawn_multi_user();
    app.setup_admin();
    let res = app.login("ROOT", ADMIN_PASSWORD);
    assert_eq!(res.status(), 200);
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(cookie.starts_with("offgrid_session=v4.local."), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let b = body(res);
    let token = b["token"].as_str().expect("token");
    assert!(token.starts_with("v4.local."));
    let ttl = parse_time(&b["expires_at"]) - now_secs();
    assert!((24 * 3600 - 60..=24 * 3600).contains(&ttl), "ttl {ttl}");
    assert_eq!(b["user"]["username"], ADMIN);

    let me = body(app.get("/v1/auth/me", Some(token)));
    assert_eq!(me["authenticated"], true);
    assert_eq!(me["user"]["username"], ADMIN);

    let remembered = body(app.post(
        "/v1/auth/login",
        None,
        json!({"username": ADMIN, "password": ADMIN_PASSWORD, "remember_me": true}),
    ));
    let ttl = parse_time(&remembered["expires_at"]) - now_secs();
    assert!((7 * 86400 - 60..=7 * 86400).contains(&ttl), "ttl {ttl}");
}

#[test]
fn login_by_email_and_generic_errors_for_unknown_or_wrong() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "alice", "email": "alice@example.org", "password": password_of("alice")}),
    );
    assert_eq!(res.status(), 201);
    assert_eq!(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "alice@example.org", "password": password_of("alice")})
        )
        .status(),
        200
    );
    let unknown = assert_error(
        app.login("nobody", "whatever-123"),
        401,
        "invalid_credentials",
    );
    let wrong = assert_error(
        app.login("alice", "whatever-123"),
        401,
        "invalid_credentials",
    );
    assert_eq!(unknown["error"]["message"], wrong["error"]["message"]);
    assert_error(
        app.login("system", "whatever-123"),
        401,
        "invalid_credentials",
    );
}

#[test]
fn logout_revokes_the_token_at_once() {
    let app = spawn_multi_user();
    let token = app.setup_admin();
    assert_eq!(app.get("/v1/users", Some(&token)).status(), 200);
    let res = app.post("/v1/auth/logout", Some(&token), json!({}));
    assert_eq!(res.status(), 200);
    assert_error(app.get("/v1/users", Some(&token)), 401, "unauthorized");
}

#[test]
fn cookie_sessions_work_for_reads_and_need_same_origin_for_writes() {
    let app = spawn_multi_user();
    let token = app.setup_admin();
    let cookie = format!("offgrid_session={token}");
    let res = app
        .client
        .get(app.url("/v1/users"))
        .header("cookie", &cookie)
        .send()
        .expect("send");
    assert_eq!(res.status(), 200);
    let create = |headers: &[(&str, String)]| {
        let mut rb = app
            .client
            .post(app.url("/v1/users"))
            .header("cookie", &cookie)
            .json(&json!({"username": "c1", "password": "c1-password-1", "create_api_key": false}));
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        rb.send().expect("send")
    };
    assert_error(create(&[]), 403, "cross_origin_request");
    assert_error(
        create(&[("origin", "http://evil.example".into())]),
        403,
        "cross_origin_request",
    );
    assert_error(
        create(&[("sec-fetch-site", "cross-site".into())]),
        403,
        "cross_origin_request",
    );
    let host = app.base.trim_start_matches("http://").to_owned();
    assert_eq!(
        create(&[("origin", format!("http://{host}"))]).status(),
        201
    );
    assert_eq!(
        app.client
            .post(app.url("/v1/auth/logout"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
            .expect("send")
            .status(),
        200
    );
    let res = app
        .client
        .get(app.url("/v1/users"))
        .header("cookie", &cookie)
        .send()
        .expect("send");
    assert_eq!(res.status(), 401);
}

#[test]
fn change_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    let mine = app.token("alice", &password_of("alice"));
    let other = app.token("alice", &password_of("alice"));
    let wrong = app.post(
        "/v1/auth/change-password",
        Some(&mine),
        json!({"current_password": "nope-nope-nope", "new_password": "new-password-1"}),
    );
    assert_error(wrong, 422, "wrong_current_password");
    let ok = app.post(
        "/v1/auth/change-password",
        Some(&mine),
        json!({"current_password": password_of("alice"), "new_password": "new-password-1"}),
    );
    assert_eq!(ok.status(), 200);
    assert_eq!(app.get("/v1/users/me", Some(&mine)).status(), 200);
    assert_error(app.get("/v1/users/me", Some(&other)), 401, "unauthorized");
}

#[test]
fn long_unicode_passwords_are_not_truncated() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let base = "ü".repeat(40); // 80 bytes, past bcrypt's 72
    let res = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "uni", "password": format!("{base}one")}),
    );
    assert_eq!(res.status(), 201);
    assert_eq!(app.login("uni", &format!("{base}one")).status(), 200);
    assert_eq!(app.login("uni", &format!("{base}two")).status(), 401);
}

fn retry_after(res: &reqwest::blocking::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After")
}

#[test]
fn repeated_failures_are_throttled_with_retry_after() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    for _ in 0..5 {
        assert_eq!(app.login("alice", "wrong-password").status(), 401);
    }
    // Locked, and this address has failures on record: even the right
    // password gets the same 429.
    let res = app.login("ALICE", &password_of("alice"));
    assert!(retry_after(&res) >= 1);
    assert_error(res, 429, "too_many_login_attempts");
}

/// POST /v1/auth/login from `local_ip` with an optional `Cookie` header.
fn login_with_cookie(
    app: &crate::helpers::TestApp,
    local_ip: &str,
    username: &str,
    cookie: Option<&str>,
) -> reqwest::blocking::Response {
    let ip: std::net::IpAddr = local_ip.parse().expect("IP address");
    let client = reqwest::blocking::Client::builder()
        .local_address(ip)
        .build()
        .expect("client");
    let mut req = client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": username, "password": password_of(username)}));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.send().expect("POST")
}

/// The `name=value` of the device cookie a response sets.
fn device_cookie(res: &reqwest::blocking::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("offgrid_device="))
        .and_then(|v| v.split(';').next())
        .expect("device cookie")
        .to_owned()
}

#[test]
fn nobody_can_lock_an_account_out_from_another_address() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "alice", "email": "alice@example.org", "password": password_of("alice")}),
    );
    assert_eq!(res.status(), 201);
    // Alice has logged in from her browser before: it holds a device
    // cookie (HttpOnly, SameSite=Strict, long-lived).
    let res = login_with_cookie(&app, "127.0.0.1", "alice", None);
    assert_eq!(res.status(), 200);
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("offgrid_device="))
        .expect("device cookie")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(set.contains("Max-Age="), "{set}");
    let device = device_cookie(&res);
    // Someone at 127.0.0.2 locks the account, by name and by e-mail.
    for login in [
        "alice",
        "alice@example.org",
        "ALICE",
        "alice",
        "alice@example.org",
    ] {
        assert_eq!(
            app.login_from("127.0.0.2", login, "wrong-password")
                .status(),
            401
        );
    }
    assert_error(
        app.login_from("127.0.0.2", "alice", &password_of("alice")),
        429,
        "too_many_login_attempts",
    );
    // A fresh address gets no password check against the locked account,
    // so rotating addresses gains an attacker nothing.
    assert_error(
        login_with_cookie(&app, "127.0.0.4", "alice", None),
        429,
        "too_many_login_attempts",
    );
    // Alice's known device still gets in with her password.
    assert_eq!(
        login_with_cookie(&app, "127.0.0.1", "alice", Some(&device)).status(),
        200
    );
    // Per-address limits still apply to the other address.
    for i in 0..20 {
        let _ = app.login_from("127.0.0.3", &format!("nobody{i}"), "wrong-password");
    }
    assert_error(
        app.login_from("127.0.0.3", "alice", &password_of("alice")),
        429,
        "too_many_login_attempts",
    );
}

#[test]
fn failures_from_one_address_are_throttled_across_usernames() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    // 20 failures for 20 different (unknown) usernames from this address.
    for i in 0..20 {
        assert_eq!(
            app.login(&format!("nobody{i}"), "wrong-password").status(),
            401
        );
    }
    // Now even a fresh username with the right password is held back.
    let res = app.login("alice", &password_of("alice"));
    assert!(retry_after(&res) >= 1);
    assert_error(res, 429, "too_many_login_attempts");
}

#[test]
fn wrong_current_passwords_in_change_password_are_throttled() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    let token = app.token("alice", &password_of("alice"));
    let change = |current: &str| {
        app.post(
            "/v1/auth/change-password",
            Some(&token),
            json!({"current_password": current, "new_password": "new-password-1"}),
        )
    };
    for _ in 0..5 {
        assert_error(change("nope-nope-nope"), 422, "wrong_current_password");
    }
    let res = change(&password_of("alice"));
    assert!(retry_after(&res) >= 1);
    assert_error(res, 429, "too_many_login_attempts");
}

#[test]
fn overlong_login_names_are_refused_before_anything_is_recorded() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.login(&"a".repeat(100_000), "whatever-password");
    assert_error(res, 422, "invalid_value");
    let audit = body(app.get("/v1/audit?action=login.", Some(&admin)));
    let actions: Vec<_> = audit["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, vec![json!("login.ok")], "only the admin's login");
}

#[test]
fn logout_with_an_api_key_says_nothing_was_revoked() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "alice", "user");
    let b = assert_error(
        app.post("/v1/auth/logout", Some(&key), json!({})),
        400,
        "not_a_session",
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was revoked")),
        "{b}"
    );
    assert_eq!(
        app.get("/v1/users/me", Some(&key)).status(),
        200,
        "key still works"
    );
}
