//! Single-user and multi-user behaviour, system config, health.

use serde_json::json;

use crate::helpers::{assert_error, body, spawn_app, spawn_multi_user};

#[test]
fn health_answers_without_credentials_in_every_mode() {
    for multi in [false, true] {
        let app = spawn_app(|s| {
            s.multi_user_mode = multi;
            s.require_auth = true;
        });
        let res = app.get("/health", None);
        assert_eq!(res.status(), 200);
        assert_eq!(body(res)["status"], "ok");
    }
}

#[test]
fn system_config_in_single_user_mode_has_the_seed_shape() {
    let app = spawn_app(|_| {});
    let b = body(app.get("/v1/system/config", None));
    assert_eq!(b["multi_user_mode"], false);
    assert_eq!(b["require_auth"], false);
    assert_eq!(b["guest_access"], true);
    assert_eq!(b["features"]["users"], false);
    for feature in ["metrics", "agent", "lora"] {
        assert!(b["features"][feature].is_boolean(), "{feature}");
    }
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(b["setup_required"], false);
}

#[test]
fn system_config_in_multi_user_mode_reports_setup() {
    let app = spawn_multi_user();
    let b = body(app.get("/v1/system/config", None));
    assert_eq!(b["multi_user_mode"], true);
    assert_eq!(b["features"]["users"], true);
    assert_eq!(b["setup_required"], true);
    app.setup_admin();
    let b = body(app.get("/v1/system/config", None));
    assert_eq!(b["setup_required"], false);
}

#[test]
fn single_user_mode_acts_as_the_local_owner() {
    let app = spawn_app(|_| {});
    let b = body(app.get("/v1/users/me", None));
    assert_eq!(b["authenticated"], true);
    assert_eq!(b["user"]["username"], "system");
    assert_eq!(b["role"], "admin");
    assert_eq!(b["mode"], "single_user");
    let auth_me = body(app.get("/v1/auth/me", None));
    assert_eq!(auth_me["user"]["id"], b["user"]["id"]);
}

#[test]
fn single_user_mode_hides_user_management_with_a_helpful_404() {
    let app = spawn_app(|_| {});
    for (method, path) in [
        ("GET", "/v1/users"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users/abc"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/setup"),
        ("GET", "/v1/users/me/api-keys"),
        ("GET", "/v1/audit"),
    ] {
        let res = app
            .request(method, path, None)
            .json(&json!({}))
            .send()
            .expect("send");
        let b = assert_error(res, 404, "multi_user_disabled");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("single-user mode") && msg.contains("OFFGRID_MULTI_USER=true"),
            "{msg}"
        );
    }
}

#[test]
fn multi_user_mode_lets_anonymous_requests_act_as_guest() {
    let app = spawn_multi_user();
    let b = body(app.get("/v1/users/me", None));
    assert_eq!(b["authenticated"], false);
    assert_eq!(b["role"], "guest");
    assert!(b["user"].is_null());
    assert_eq!(b["permissions"], json!(["chat"]));
    assert_eq!(app.get("/v1/users", None).status(), 401);
}

#[test]
fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app(|_| {});
    assert_error(app.get("/v1/nope", None), 404, "not_found");
    let res = app.request("PUT", "/health", None).send().expect("send");
    assert_error(res, 405, "method_not_allowed");
}

#[test]
fn without_models_the_server_serves_the_rest_and_says_how_to_get_one() {
    let app = spawn_app(|_| {});
    assert_eq!(body(app.get("/v1/models", None))["data"], json!([]));
    let res = app.post(
        "/v1/chat/completions",
        None,
        json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let b = assert_error(res, 404, "model_not_found");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cargo xtask models"),
        "{b}"
    );
    assert_eq!(app.get("/health", None).status(), 200);
}
