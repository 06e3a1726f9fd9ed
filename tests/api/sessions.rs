//! Chat sessions over HTTP: the cross-tenant matrix (every session
//! endpoint × every kind of caller × every share level, each cell's status
//! asserted and the owner's data unchanged after every refusal), and the
//! shapes clients rely on.

use serde_json::{Value, json};

use crate::helpers::*;

/// One session endpoint, with the body it sends.
struct Endpoint {
    method: &'static str,
    /// `{id}` is the session, `{other}` a user id to unshare.
    path: &'static str,
    body: Value,
    /// What the request needs: 0 read, 1 write, 2 admin, 3 owner or Admin.
    needs: u8,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method, path, body, needs| Endpoint {
        method,
        path,
        body,
        needs,
    };
    vec![
        e("GET", "/v1/sessions/{id}", json!(null), 0),
        e(
            "GET",
            "/v1/sessions/{id}/export?format=json",
            json!(null),
            0,
        ),
        e(
            "POST",
            "/v1/sessions/{id}/messages",
            json!({"role": "user", "content": "intruder"}),
            1,
        ),
        e(
            "PATCH",
            "/v1/sessions/{id}",
            json!({"model": "someone-elses"}),
            1,
        ),
        e(
            "PATCH",
            "/v1/sessions/{id}",
            json!({"title": "taken over"}),
            2,
        ),
        e("GET", "/v1/sessions/{id}/shares", json!(null), 2),
        e(
            "POST",
            "/v1/sessions/{id}/shares",
            json!({"username": "carol", "permission": "read"}),
            2,
        ),
        e("DELETE", "/v1/sessions/{id}/shares/{other}", json!(null), 2),
        e("DELETE", "/v1/sessions/{id}", json!(null), 3),
    ]
}

fn send(app: &TestApp, method: &str, path: &str, auth: Option<&str>, body: &Value) -> u16 {
    let mut req = app.request(method, path, auth);
    if !body.is_null() {
        req = req.json(body);
    }
    req.send().expect("send").status().as_u16()
}

/// What the owner sees: title, messages and shares.
fn snapshot(app: &TestApp, owner: &str, id: &str) -> Value {
    let session = body(app.get(&format!("/v1/sessions/{id}"), Some(owner)));
    let shares = body(app.get(&format!("/v1/sessions/{id}/shares"), Some(owner)));
    json!({"title": session["title"], "model": session["model"],
        "messages": session["messages"], "shares": shares["data"]})
}

#[test]
fn the_cross_tenant_matrix_holds_for_every_endpoint_caller_and_share() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (bob_id, bob) = app.create_user(&admin, "bob", "user");
    let (carol_id, _) = app.create_user(&admin, "carol", "user");
    let (vic_id, vic) = app.create_user(&admin, "vic", "viewer");
    let (_, gus) = app.create_user(&admin, "gus", "guest");

    // (caller, credential, share to give first, expected level: None = sees
    // nothing, Some(n) = holds level n as in `Endpoint::needs`)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<(&'a str, &'a str)>,
        Option<u8>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("another user", Some(&bob), None, None),
        ("a viewer", Some(&vic), None, None),
        ("a guest account", Some(&gus), None, None),
        ("anonymous", None, None, None),
        (
            "bob with read",
            Some(&bob),
            Some((&bob_id, "read")),
            Some(0),
        ),
        (
            "bob with write",
            Some(&bob),
            Some((&bob_id, "write")),
            Some(1),
        ),
        (
            "bob with admin",
            Some(&bob),
            Some((&bob_id, "admin")),
            Some(2),
        ),
        (
            "a viewer with admin",
            Some(&vic),
            Some((&vic_id, "admin")),
            Some(0),
        ),
        ("an admin", Some(&admin), None, Some(3)),
        ("the owner", Some(&ann), None, Some(3)),
    ];
    for endpoint in endpoints() {
        for (who, credential, share, level) in &cases {
            // A fresh session per cell, so one cell's success (a delete, a
            // rename) cannot change the next cell's answer.
            let created = body(app.post("/v1/sessions", Some(&ann), json!({"title": "Ann's"})));
            let id = created["id"].as_str().expect("id").to_owned();
            let said = app.post(
                &format!("/v1/sessions/{id}/messages"),
                Some(&ann),
                json!({"role": "user", "content": "private"}),
            );
            assert_eq!(said.status().as_u16(), 201);
            // Something to unshare: carol holds read.
            let carol = app.post(
                &format!("/v1/sessions/{id}/shares"),
                Some(&ann),
                json!({"user_id": carol_id, "permission": "read"}),
            );
            assert_eq!(carol.status().as_u16(), 201);
            if let Some((user, permission)) = share {
                let shared = app.post(
                    &format!("/v1/sessions/{id}/shares"),
                    Some(&ann),
                    json!({"user_id": user, "permission": permission}),
                );
                assert_eq!(shared.status().as_u16(), 201, "{who}");
            }
            let before = snapshot(&app, &ann, &id);
            let path = endpoint
                .path
                .replace("{id}", &id)
                .replace("{other}", &carol_id);
            let status = send(&app, endpoint.method, &path, *credential, &endpoint.body);
            let cell = format!("{who}: {} {}", endpoint.method, endpoint.path);
            let expected: &[u16] = match level {
                // Guests have no workspace: the gate answers before the
                // session is looked up (anonymous callers are asked to
                // sign in).
                None if credential.is_none() => &[401],
                None if *who == "a guest account" => &[403],
                None => &[404],
                Some(have) if *have >= endpoint.needs => &[200, 201, 204],
                Some(_) => &[403],
            };
            assert!(
                expected.contains(&status),
                "{cell}: {status}, expected {expected:?}"
            );
            if !(200..300).contains(&status) {
                assert_eq!(snapshot(&app, &ann, &id), before, "{cell}: data changed");
            }
        }
    }
}

#[test]
fn a_session_round_trip_has_the_documented_shape() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (ann_id, ann) = app.create_user(&admin, "ann", "user");
    let created = app.post("/v1/sessions", Some(&ann), json!({}));
    assert_eq!(created.status().as_u16(), 201);
    let s = body(created);
    assert_eq!(s["title"], "New chat");
    assert_eq!(s["permission"], "owner");
    assert_eq!(s["owner"], json!({"id": ann_id, "username": "ann"}));
    assert_eq!(s["message_count"], 0);
    let id = s["id"].as_str().expect("id");
    for (role, content) in [("user", "Hello?"), ("assistant", "Hi **there**.")] {
        let m = body(app.post(
            &format!("/v1/sessions/{id}/messages"),
            Some(&ann),
            json!({"role": role, "content": content}),
        ));
        assert_eq!(m["role"], role);
        assert_eq!(m["content"], content);
    }
    let got = body(app.get(&format!("/v1/sessions/{id}"), Some(&ann)));
    assert_eq!(got["message_count"], 2);
    let messages = got["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], "Hi **there**.");

    let md = app.get(&format!("/v1/sessions/{id}/export?format=md"), Some(&ann));
    assert_eq!(md.status().as_u16(), 200);
    assert!(
        md.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/markdown"))
    );
    let text = md.text().expect("text");
    assert!(text.starts_with("# New chat"), "{text}");
    assert!(text.contains("## Assistant") && text.contains("Hi **there**."));
    let bad = app.get(&format!("/v1/sessions/{id}/export?format=pdf"), Some(&ann));
    assert_eq!(bad.status().as_u16(), 400);

    let list = body(app.get("/v1/sessions?q=new&limit=1", Some(&ann)));
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["next_cursor"], Value::Null);
    let bad_cursor = app.get("/v1/sessions?cursor=nonsense", Some(&ann));
    assert_eq!(bad_cursor.status().as_u16(), 422);
    assert_eq!(body(bad_cursor)["error"]["code"], "invalid_value");

    let gone = app.delete(&format!("/v1/sessions/{id}"), Some(&ann));
    assert_eq!(gone.status().as_u16(), 204);
    let again = app.get(&format!("/v1/sessions/{id}"), Some(&ann));
    assert_eq!(again.status().as_u16(), 404);
    assert_eq!(body(again)["error"]["code"], "not_found");
}

#[test]
fn sessions_work_in_single_user_mode_without_sharing() {
    let app = spawn_app(|_| {});
    let created = app.post("/v1/sessions", None, json!({"title": "Mine"}));
    assert_eq!(created.status().as_u16(), 201);
    let id = body(created)["id"].as_str().expect("id").to_owned();
    let list = body(app.get("/v1/sessions", None));
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["owner"]["username"], "system");
    let share = app.post(
        &format!("/v1/sessions/{id}/shares"),
        None,
        json!({"username": "x", "permission": "read"}),
    );
    assert_eq!(share.status().as_u16(), 404);
    assert_eq!(body(share)["error"]["code"], "multi_user_disabled");
}

#[test]
fn sharing_refuses_unknown_guest_and_self_with_clear_errors() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    app.create_user(&admin, "gus", "guest");
    let id = body(app.post("/v1/sessions", Some(&ann), json!({})))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let share = |body: Value| {
        let res = app.post(&format!("/v1/sessions/{id}/shares"), Some(&ann), body);
        (res.status().as_u16(), crate::helpers::body(res))
    };
    let (s, b) = share(json!({"username": "nobody", "permission": "read"}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("user_not_found"))
    );
    let (s, b) = share(json!({"username": "gus", "permission": "read"}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid_value"))
    );
    let (s, _) = share(json!({"username": "ann", "permission": "read"}));
    assert_eq!(s, 422);
    let (s, b) = share(json!({"username": "ann", "user_id": "x", "permission": "read"}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (s, _) = share(json!({"username": "gus", "permission": "owner"}));
    assert_eq!(s, 400);
}

#[test]
fn deleting_a_user_moves_or_removes_their_work_and_orphans_nothing() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (ann_id, ann) = app.create_user(&admin, "ann", "user");
    let (bob_id, bob) = app.create_user(&admin, "bob", "user");
    let (carol_id, carol) = app.create_user(&admin, "carol", "user");
    let (vic_id, _) = app.create_user(&admin, "vic", "viewer");
    let session = |who: &str, title: &str| {
        body(app.post("/v1/sessions", Some(who), json!({"title": title})))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let anns = session(&ann, "Ann's notes");
    let carols = session(&carol, "Carol's");
    // Ann shares hers with carol; carol shares hers with ann.
    for (owner, id, with) in [(&ann, &anns, &carol_id), (&carol, &carols, &ann_id)] {
        let shared = app.post(
            &format!("/v1/sessions/{id}/shares"),
            Some(owner),
            json!({"user_id": with, "permission": "write"}),
        );
        assert_eq!(shared.status().as_u16(), 201);
    }
    app.post("/v1/presets", Some(&ann), json!({"name": "Ann's preset"}));

    // A viewer, a missing user and ann herself cannot inherit.
    for heir in [vic_id.as_str(), "no-such-user", ann_id.as_str()] {
        let refused = app.delete(
            &format!("/v1/users/{ann_id}?transfer_to={heir}"),
            Some(&admin),
        );
        assert_eq!(refused.status().as_u16(), 422, "{heir}");
        assert_eq!(body(refused)["error"]["code"], "invalid_value");
    }
    let gone = app.delete(
        &format!("/v1/users/{ann_id}?transfer_to={bob_id}"),
        Some(&admin),
    );
    assert_eq!(gone.status().as_u16(), 200);

    // Bob owns Ann's session and preset now, without the share Ann gave.
    let bobs = body(app.get("/v1/sessions", Some(&bob)));
    assert_eq!(bobs["data"][0]["id"], anns.as_str());
    assert_eq!(bobs["data"][0]["owner"]["username"], "bob");
    let shares = body(app.get(&format!("/v1/sessions/{anns}/shares"), Some(&bob)));
    assert_eq!(shares["data"], json!([]));
    assert_eq!(
        app.get(&format!("/v1/sessions/{anns}"), Some(&carol))
            .status()
            .as_u16(),
        404
    );
    let presets = body(app.get("/v1/presets", Some(&bob)));
    assert_eq!(presets["data"][0]["owner"]["username"], "bob");
    // The share Ann held on Carol's session is gone with her.
    let carols_shares = body(app.get(&format!("/v1/sessions/{carols}/shares"), Some(&carol)));
    assert_eq!(carols_shares["data"], json!([]));

    // Without transfer_to, the work goes with the user.
    let gone = app.delete(&format!("/v1/users/{bob_id}"), Some(&admin));
    assert_eq!(gone.status().as_u16(), 200);
    let all = body(app.get("/v1/sessions?all=true", Some(&admin)));
    let titles: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|s| s["title"].as_str())
        .collect();
    assert_eq!(titles, ["Carol's"]);
}
