//! API keys: own and admin forms, scoping, revocation, where keys are read.

use serde_json::json;

use crate::helpers::{assert_error, body, password_of, spawn_app, spawn_multi_user};

#[test]
fn users_manage_their_own_keys() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    let token = app.token("alice", &password_of("alice"));
    let res = app.post(
        "/v1/users/me/api-keys",
        Some(&token),
        json!({"name": "laptop", "expires_in_days": 30}),
    );
    assert_eq!(res.status(), 201);
    let created = body(res);
    let secret = created["key"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    assert!(created["expires_at"].is_string());
    let listed = body(app.get("/v1/users/me/api-keys", Some(&token)));
    let names: Vec<_> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|k| k["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("laptop"), json!("default")]);
    assert!(
        listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|k| k.get("key").is_none()),
        "secrets never listed"
    );
    let me = body(app.get("/v1/users/me", Some(&secret)));
    assert_eq!(me["user"]["username"], "alice");
    let listed = body(app.get("/v1/users/me/api-keys", Some(&token)));
    assert!(
        listed["data"][0]["last_used_at"].is_string(),
        "use is recorded"
    );
    let id = created["id"].as_str().expect("id");
    let res = app.delete(&format!("/v1/users/me/api-keys/{id}"), Some(&token));
    assert_eq!(res.status(), 200);
    assert_eq!(body(res)["revoked"], true);
    assert_error(app.get("/v1/users/me", Some(&secret)), 401, "unauthorized");
    assert_error(
        app.post("/v1/users/me/api-keys", Some(&token), json!({"name": ""})),
        422,
        "invalid_value",
    );
    assert_error(
        app.post(
            "/v1/users/me/api-keys",
            Some(&token),
            json!({"name": "x", "expires_at": "tomorrow"}),
        ),
        400,
        "invalid_value",
    );
}

#[test]
fn another_users_key_is_a_404_not_a_403() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    app.create_user(&admin, "alice", "user");
    app.create_user(&admin, "bob", "user");
    let alice = app.token("alice", &password_of("alice"));
    let bob = app.token("bob", &password_of("bob"));
    let alice_key = body(app.post("/v1/users/me/api-keys", Some(&alice), json!({"name": "k"})));
    let id = alice_key["id"].as_str().expect("id");
    assert_error(
        app.delete(&format!("/v1/users/me/api-keys/{id}"), Some(&bob)),
        404,
        "not_found",
    );
    assert_eq!(
        app.get(
            "/v1/users/me",
            Some(alice_key["key"].as_str().expect("key"))
        )
        .status(),
        200,
        "still valid"
    );
    let bobs = body(app.get("/v1/users/me/api-keys", Some(&bob)));
    assert!(
        bobs["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|k| k["id"] != id)
    );
}

#[test]
fn admins_manage_anyones_keys() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (id, default_key) = app.create_user(&admin, "alice", "user");
    let res = app.post(
        &format!("/v1/users/{id}/api-keys"),
        Some(&admin),
        json!({"name": "ci"}),
    );
    assert_eq!(res.status(), 201);
    let listed = body(app.get(&format!("/v1/users/{id}/api-keys"), Some(&admin)));
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
    let default_id = listed["data"][1]["id"].as_str().expect("id");
    assert_eq!(
        app.delete(
            &format!("/v1/users/{id}/api-keys/{default_id}"),
            Some(&admin)
        )
        .status(),
        200
    );
    assert_eq!(app.get("/v1/users/me", Some(&default_key)).status(), 401);
    assert_error(
        app.get(
            "/v1/users/0b6f3c1e-0000-4000-8000-000000000009/api-keys",
            Some(&admin),
        ),
        404,
        "not_found",
    );
}

#[test]
fn keys_are_read_only_from_the_authorization_header() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "alice", "user");
    assert_eq!(app.get("/v1/users/me", Some(&key)).status(), 200);
    assert_eq!(
        app.get(&format!("/v1/users/me?api_key={key}"), None)
            .status(),
        401
    );
    assert_eq!(
        app.get(&format!("/v1/users/me?token={key}"), None).status(),
        401
    );
    let basic = app
        .client
        .get(app.url("/v1/users/me"))
        .header("authorization", format!("Basic {key}"))
        .send()
        .expect("send");
    assert_eq!(basic.status(), 401);
}

#[test]
fn an_api_key_creates_keys_only_if_made_to() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, default_key) = app.create_user(&admin, "alice", "user");
    let token = app.token("alice", &password_of("alice"));
    let minting = body(app.post(
        "/v1/users/me/api-keys",
        Some(&token),
        json!({"name": "ci", "can_create_keys": true}),
    ));
    assert_eq!(minting["can_create_keys"], true);
    let minting = minting["key"].as_str().expect("key").to_owned();
    let listed = body(app.get("/v1/users/me/api-keys", Some(&token)));
    assert_eq!(listed["data"][1]["can_create_keys"], false, "{listed}");

    assert_error(
        app.post(
            "/v1/users/me/api-keys",
            Some(&default_key),
            json!({"name": "x"}),
        ),
        403,
        "api_key_cannot_create_keys",
    );
    let res = app.post(
        "/v1/users/me/api-keys",
        Some(&minting),
        json!({"name": "y"}),
    );
    assert_eq!(res.status(), 201);
    assert_eq!(body(res)["can_create_keys"], false, "not by default");

    // An admin's plain key cannot mint keys for others either.
    let (_, admin_key) = app.create_user(&admin, "a2", "admin");
    assert_error(
        app.post(
            "/v1/users",
            Some(&admin_key),
            json!({"username": "bob", "password": password_of("bob")}),
        ),
        403,
        "api_key_cannot_create_keys",
    );
    let res = app.post(
        "/v1/users",
        Some(&admin_key),
        json!({"username": "bob", "password": password_of("bob"), "create_api_key": false}),
    );
    assert_eq!(res.status(), 201);
}
