//! Admin user management and immediate revocation.

use serde_json::json;

use crate::helpers::{ADMIN, assert_error, body, password_of, spawn_multi_user};

#[test]
fn admin_creates_lists_searches_and_pages_users() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "alice", "password": password_of("alice"), "role": "viewer", "display_name": "Alice A."}),
    );
    assert_eq!(res.status(), 201);
    let b = body(res);
    assert_eq!(b["user"]["role"], "viewer");
    let key = b["api_key"]["key"].as_str().expect("key shown once");
    assert!(key.starts_with("og_") && key.len() >= 46);
    assert_eq!(
        body(app.get("/v1/users/me", Some(key)))["user"]["username"],
        "alice"
    );
    for name in ["bob", "carol", "dave"] {
        app.create_user(&admin, name, "user");
    }
    let page = body(app.get("/v1/users?limit=2&offset=1", Some(&admin)));
    assert_eq!(page["total"], 5);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let found = body(app.get("/v1/users?search=ALI", Some(&admin)));
    assert_eq!(found["total"], 1);
    assert_eq!(found["data"][0]["display_name"], "Alice A.");
    let viewers = body(app.get("/v1/users?role=viewer", Some(&admin)));
    assert_eq!(viewers["total"], 1);
    assert_error(
        app.get("/v1/users?limit=0", Some(&admin)),
        400,
        "invalid_query",
    );
    assert_error(
        app.get("/v1/users?role=root", Some(&admin)),
        400,
        "invalid_query",
    );
    let dup = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "ALICE", "password": password_of("x")}),
    );
    assert_error(dup, 409, "conflict");
    let bad_role = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "eve", "password": password_of("x"), "role": "root"}),
    );
    assert_error(bad_role, 400, "invalid_request");
}

#[test]
fn admin_gets_patches_and_deletes_users() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (id, _) = app.create_user(&admin, "alice", "user");
    let path = format!("/v1/users/{id}");
    assert_eq!(body(app.get(&path, Some(&admin)))["username"], "alice");
    let patched = body(app.patch(
        &path,
        Some(&admin),
        json!({"role": "viewer", "display_name": "Al"}),
    ));
    assert_eq!(patched["role"], "viewer");
    assert_eq!(patched["display_name"], "Al");
    assert_error(
        app.patch(&path, Some(&admin), json!({"colour": "red"})),
        400,
        "invalid_request",
    );
    let res = app.delete(&path, Some(&admin));
    assert_eq!(res.status(), 200);
    assert_eq!(body(res)["deleted"], true);
    assert_error(app.get(&path, Some(&admin)), 404, "not_found");
    assert_error(app.delete(&path, Some(&admin)), 404, "not_found");
}

#[test]
fn the_last_admin_and_the_system_user_are_protected() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let me = body(app.get("/v1/users/me", Some(&admin)));
    let my_path = format!("/v1/users/{}", me["user"]["id"].as_str().expect("id"));
    assert_error(
        app.patch(&my_path, Some(&admin), json!({"role": "user"})),
        409,
        "last_admin",
    );
    assert_error(
        app.patch(&my_path, Some(&admin), json!({"disabled": true})),
        409,
        "last_admin",
    );
    assert_error(app.delete(&my_path, Some(&admin)), 409, "last_admin");
    let system = "/v1/users/00000000-0000-0000-0000-000000000000";
    assert_error(
        app.patch(system, Some(&admin), json!({"role": "admin"})),
        409,
        "system_user",
    );
    assert_error(app.delete(system, Some(&admin)), 409, "system_user");
    assert_eq!(
        body(app.get("/v1/users", Some(&admin)))["total"],
        1,
        "system user is not listed"
    );
}

#[test]
fn disabling_role_change_and_reset_revoke_on_the_next_request() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    for (i, change) in [
        json!({"disabled": true}),
        json!({"role": "viewer"}),
        json!(null),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("user{i}");
        let (id, key) = app.create_user(&admin, &name, "user");
        let token = app.token(&name, &password_of(&name));
        assert_eq!(app.get("/v1/users/me", Some(&token)).status(), 200);
        assert_eq!(app.get("/v1/users/me", Some(&key)).status(), 200);
        if change.is_null() {
            let res = app.post(
                &format!("/v1/users/{id}/reset-password"),
                Some(&admin),
                json!({"password": "reset-password-1"}),
            );
            assert_eq!(res.status(), 200);
            assert_eq!(app.login(&name, "reset-password-1").status(), 200);
        } else {
            assert_eq!(
                app.patch(&format!("/v1/users/{id}"), Some(&admin), change.clone())
                    .status(),
                200
            );
        }
        assert_error(app.get("/v1/users/me", Some(&token)), 401, "unauthorized");
        assert_error(app.get("/v1/users/me", Some(&key)), 401, "unauthorized");
    }
    // A disabled user cannot log in either, with the generic error.
    let (id, _) = app.create_user(&admin, "zed", "user");
    app.patch(
        &format!("/v1/users/{id}"),
        Some(&admin),
        json!({"disabled": true}),
    );
    assert_error(
        app.login("zed", &password_of("zed")),
        401,
        "invalid_credentials",
    );
}

#[test]
fn deleting_a_user_ends_their_credentials() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (id, key) = app.create_user(&admin, "alice", "user");
    let token = app.token("alice", &password_of("alice"));
    assert_eq!(
        app.delete(&format!("/v1/users/{id}"), Some(&admin))
            .status(),
        200
    );
    assert_eq!(app.get("/v1/users/me", Some(&token)).status(), 401);
    assert_eq!(app.get("/v1/users/me", Some(&key)).status(), 401);
}

#[test]
fn audit_log_records_security_events_for_admins_only() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let _ = app.login(ADMIN, "wrong-password");
    let (id, key) = app.create_user(&admin, "alice", "user");
    app.patch(
        &format!("/v1/users/{id}"),
        Some(&admin),
        json!({"role": "viewer"}),
    );
    let all = body(app.get("/v1/audit?limit=100", Some(&admin)));
    let actions: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "setup.admin_created",
        "login.ok",
        "login.failed",
        "user.created",
        "api_key.created",
        "user.updated",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let failed = body(app.get("/v1/audit?action=login.failed", Some(&admin)));
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["data"][0]["target"], ADMIN);
    assert!(failed["data"][0]["client_addr"].as_str().is_some());
    let logins = body(app.get("/v1/audit?action=login.", Some(&admin)));
    assert_eq!(logins["total"], 2);
    assert_eq!(
        app.get("/v1/audit", Some(&key)).status(),
        401,
        "key died with the role change"
    );
    let viewer = app.token("alice", &password_of("alice"));
    assert_error(
        app.get("/v1/audit", Some(&viewer)),
        403,
        "insufficient_permissions",
    );
}

#[test]
fn common_passwords_are_refused_with_their_own_code() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.post(
        "/v1/users",
        Some(&admin),
        json!({"username": "weak", "password": "Password1"}),
    );
    assert_error(res, 422, "common_password");
    let (id, _) = app.create_user(&admin, "alice", "user");
    let res = app.post(
        &format!("/v1/users/{id}/reset-password"),
        Some(&admin),
        json!({"new_password": "ILOVEYOU"}),
    );
    assert_error(res, 422, "common_password");
}
