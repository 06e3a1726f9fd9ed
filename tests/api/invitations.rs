//! Invitations over HTTP: an admin makes one, the code is shown once and
//! signs one newcomer in with the invited role; every other use of a code
//! gets one identical answer; attempts are throttled and audited; only
//! administrators manage invitations, and only in multi-user mode.

use std::sync::{Arc, Barrier};

use offgrid_domain::invitation::{Inviter, NewInvitation};
use offgrid_domain::repo::InvitationRepository;
use offgrid_domain::{Role, Timestamp};
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::helpers::log_capture::record_secret;
use crate::helpers::{TestApp, assert_error, body, password_of, spawn_app, spawn_multi_user};

/// Makes an invitation as `admin`; returns (id, code).
fn invite(app: &TestApp, admin: &str, role: &str) -> (String, String) {
    let res = app.post("/v1/invitations", Some(admin), json!({"role": role}));
    assert_eq!(res.status(), 201, "invite {role}");
    let b = body(res);
    let code = b["code"].as_str().expect("code").to_owned();
    record_secret(&code);
    (b["id"].as_str().expect("id").to_owned(), code)
}

/// A client on a loopback address of its own (`127.0.0.x`), so each
/// client is throttled on its own.
fn client_from(ip: &str) -> Client {
    let ip: std::net::IpAddr = ip.parse().expect("IP address");
    Client::builder().local_address(ip).build().expect("client")
}

/// `POST /v1/auth/accept-invite` with `client`.
fn accept_with(app: &TestApp, client: &Client, code: &str, username: &str) -> Response {
    let password = format!("{username}-password-1");
    record_secret(&password);
    client
        .post(app.url("/v1/auth/accept-invite"))
        .json(&json!({"code": code, "username": username, "password": password}))
        .send()
        .expect("POST")
}

/// `POST /v1/auth/accept-invite` from `ip`.
fn accept_from(app: &TestApp, ip: &str, code: &str, username: &str) -> Response {
    accept_with(app, &client_from(ip), code, username)
}

fn accept(app: &TestApp, code: &str, username: &str) -> Response {
    accept_from(app, "127.0.0.1", code, username)
}

fn invitations(app: &TestApp, admin: &str) -> Vec<Value> {
    let res = app.get("/v1/invitations", Some(admin));
    assert_eq!(res.status(), 200);
    body(res)["data"].as_array().expect("data").clone()
}

fn audit_actions(app: &TestApp, admin: &str) -> Vec<String> {
    let audit = body(app.get("/v1/audit?action=invitation.&limit=200", Some(admin)));
    audit["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

fn user_total(app: &TestApp, admin: &str, search: &str) -> i64 {
    let page = body(app.get(&format!("/v1/users?search={search}"), Some(admin)));
    page["total"].as_i64().expect("total")
}

#[test]
fn an_invitation_shows_its_code_once_and_signs_one_newcomer_in() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let res = app.post(
        "/v1/invitations",
        Some(&admin),
        json!({"role": "viewer", "note": "for Vera"}),
    );
    assert_eq!(res.status(), 201);
    let created = body(res);
    let (id, code) = (
        created["id"].as_str().expect("id").to_owned(),
        created["code"].as_str().expect("code").to_owned(),
    );
    record_secret(&code);
    assert_eq!(created["path"], format!("/invite/{code}"));
    let expires = Timestamp::parse_rfc3339(created["expires_at"].as_str().expect("expiry"))
        .expect("RFC 3339");
    let now = offgrid_auth::service::now();
    assert!((now.0 + 71 * 3600..=now.0 + 72 * 3600).contains(&expires.0));

    // Listed without the code, in any spelling.
    let listing = app
        .get("/v1/invitations", Some(&admin))
        .text()
        .expect("text");
    for shown in [code.clone(), code.replace('-', "")] {
        assert!(!listing.contains(&shown), "{listing}");
    }
    let listed: Value = serde_json::from_str(&listing).expect("json");
    let row = &listed["data"][0];
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["status"], "pending");
    assert_eq!(row["role"], "viewer");
    assert_eq!(row["note"], "for Vera");
    assert_eq!(row["created_by"]["name"], "root");
    assert!(row["created_by"]["id"].is_string());
    assert!(row["used_by"].is_null() && row["used_at"].is_null());

    // Accepting answers exactly like a login.
    let res = accept(&app, &code.to_lowercase(), "vera");
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("set-cookie").is_some());
    let signed_in = body(res);
    let login = body(app.login("vera", "vera-password-1"));
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&signed_in), keys(&login));
    assert_eq!(signed_in["user"]["role"], "viewer");
    let token = signed_in["token"].as_str().expect("token");
    let me = body(app.get("/v1/auth/me", Some(token)));
    assert_eq!(me["user"]["username"], "vera");
    assert_eq!(me["role"], "viewer");

    // Once only.
    let again = assert_error(accept(&app, &code, "vera2"), 403, "invalid_invitation");
    assert!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid")),
        "{again}"
    );
    assert_eq!(user_total(&app, &admin, "vera2"), 0);
    let row = invitations(&app, &admin)[0].clone();
    assert_eq!(row["status"], "used");
    assert_eq!(row["used_by"]["username"], "vera");
    assert_eq!(row["used_by"]["id"], signed_in["user"]["id"]);
    assert!(row["used_at"].is_string());

    // A used invitation cannot be revoked; an unknown one is not found.
    let res = app.delete(&format!("/v1/invitations/{id}"), Some(&admin));
    assert_error(res, 409, "invitation_used");
    let res = app.delete("/v1/invitations/no-such-invitation", Some(&admin));
    assert_error(res, 404, "not_found");

    let actions = audit_actions(&app, &admin);
    for action in [
        "invitation.created",
        "invitation.accepted",
        "invitation.accept_failed",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[test]
fn used_revoked_expired_and_wrong_codes_get_one_identical_answer() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, used) = invite(&app, &admin, "user");
    assert_eq!(accept(&app, &used, "first").status(), 200);
    let (revoked_id, revoked) = invite(&app, &admin, "user");
    let res = app.delete(&format!("/v1/invitations/{revoked_id}"), Some(&admin));
    assert_eq!(res.status(), 204);
    // Revoking again changes nothing.
    let res = app.delete(&format!("/v1/invitations/{revoked_id}"), Some(&admin));
    assert_eq!(res.status(), 204);
    // An invitation whose time ran out, written straight to the database.
    let expired = offgrid_auth::invite_code::generate();
    record_secret(&expired.code);
    let db = offgrid_storage::Database::open(&app.home.path().join("offgrid.db")).expect("db");
    let then = offgrid_auth::service::now().plus_secs(-7200);
    InvitationRepository::create(
        &db,
        NewInvitation {
            code_hash: expired.digest.clone(),
            role: Role::User,
            note: None,
            created_by: Inviter {
                id: None,
                name: "offgrid-admin".into(),
            },
            created_at: then,
            expires_at: then.plus_secs(3600),
        },
    )
    .expect("expired invitation");
    let wrong = offgrid_auth::invite_code::generate().code;

    let mut answers = Vec::new();
    for (i, code) in [&used, &revoked, &expired.code, &wrong, "not-a-code"]
        .into_iter()
        .enumerate()
    {
        let res = accept_from(&app, &format!("127.0.0.{}", 10 + i), code, "second");
        answers.push((res.status().as_u16(), body(res)));
    }
    let (status, first) = &answers[0];
    assert_eq!(*status, 403);
    assert_eq!(first["error"]["code"], "invalid_invitation");
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(user_total(&app, &admin, "second"), 0);
    let mut statuses: Vec<_> = invitations(&app, &admin)
        .iter()
        .map(|i| i["status"].as_str().expect("status").to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["expired", "revoked", "used"]);
    assert!(audit_actions(&app, &admin).contains(&"invitation.revoked".to_owned()));
}

#[test]
fn only_administrators_make_list_or_revoke_invitations() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (id, _) = invite(&app, &admin, "user");
    let (_, user) = app.create_user(&admin, "ursula", "user");
    let (_, viewer) = app.create_user(&admin, "victor", "viewer");
    let (_, guest) = app.create_user(&admin, "gus", "guest");
    for (who, credential) in [
        ("anonymous", None),
        ("guest", Some(guest.as_str())),
        ("viewer", Some(viewer.as_str())),
        ("user", Some(user.as_str())),
    ] {
        let tries = [
            app.post("/v1/invitations", credential, json!({"role": "admin"})),
            app.get("/v1/invitations", credential),
            app.delete(&format!("/v1/invitations/{id}"), credential),
        ];
        for res in tries {
            let status = res.status().as_u16();
            assert!(status == 401 || status == 403, "{who}: {status}");
        }
    }
    let rows = invitations(&app, &admin);
    assert_eq!(rows.len(), 1, "nobody else made one");
    assert_eq!(rows[0]["status"], "pending", "nobody else revoked it");
}

#[test]
fn twenty_concurrent_accepts_of_one_code_make_exactly_one_account() {
    // A slower bcrypt widens the window between the code's look-up and the
    // account's insert, where a check that is not atomic would let two in.
    let app = Arc::new(spawn_app(|s| {
        s.multi_user_mode = true;
        s.bcrypt_cost = 8;
    }));
    let admin = app.setup_admin();
    let (_, code) = invite(&app, &admin, "user");
    let barrier = Arc::new(Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (app, barrier, code) = (app.clone(), barrier.clone(), code.clone());
            std::thread::spawn(move || {
                // Everything but the request itself is ready before the
                // start, so the twenty arrive together.
                let client = client_from(&format!("127.0.0.{}", 20 + i));
                assert_eq!(
                    client
                        .get(app.url("/health"))
                        .send()
                        .expect("warm")
                        .status(),
                    200
                );
                barrier.wait();
                let res = accept_with(&app, &client, &code, &format!("racer{i}"));
                res.status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = racers
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "{statuses:?}"
    );
    assert_eq!(user_total(&app, &admin, "racer"), 1);
}

#[test]
fn repeated_wrong_codes_are_throttled_per_address_and_audited() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (_, code) = invite(&app, &admin, "user");
    let ip = "127.0.0.5";
    for _ in 0..5 {
        let wrong = offgrid_auth::invite_code::generate().code;
        assert_error(
            accept_from(&app, ip, &wrong, "mallory"),
            403,
            "invalid_invitation",
        );
    }
    let res = accept_from(&app, ip, &code, "mallory");
    assert!(res.headers().get("retry-after").is_some());
    assert_error(res, 429, "too_many_login_attempts");
    // Another address is not held back, and the code still works.
    assert_eq!(accept_from(&app, "127.0.0.6", &code, "alice").status(), 200);
    let actions = audit_actions(&app, &admin);
    let failed = actions
        .iter()
        .filter(|a| *a == "invitation.accept_failed")
        .count();
    assert_eq!(failed, 5, "{actions:?}");
    assert!(
        actions.contains(&"invitation.throttled".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn guest_invitations_and_bad_values_are_refused_and_mistakes_keep_the_code() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    for (payload, status, code) in [
        (json!({"role": "guest"}), 422, "invalid_value"),
        (json!({"role": "root"}), 400, "invalid_request"),
        (json!({}), 400, "invalid_request"),
        (
            json!({"role": "user", "expires_in_hours": 0}),
            422,
            "invalid_value",
        ),
        (
            json!({"role": "user", "expires_in_hours": 721}),
            422,
            "invalid_value",
        ),
        (
            json!({"role": "user", "expires_in_hours": -1}),
            400,
            "invalid_request",
        ),
        (
            json!({"role": "user", "expires_in_hours": 1e30}),
            400,
            "invalid_request",
        ),
        (
            json!({"role": "user", "note": "x".repeat(201)}),
            422,
            "invalid_value",
        ),
        (
            json!({"role": "user", "code": "chosen"}),
            400,
            "invalid_request",
        ),
    ] {
        let res = app.post("/v1/invitations", Some(&admin), payload.clone());
        assert_error(res, status, code);
    }
    assert!(invitations(&app, &admin).is_empty());

    let (_, code) = invite(&app, &admin, "admin");
    let bad = |username: &str, password: &str| {
        app.post(
            "/v1/auth/accept-invite",
            None,
            json!({"code": code, "username": username, "password": password}),
        )
    };
    assert_error(bad("bad name!", "a-fine-password-1"), 422, "invalid_value");
    assert_error(bad("newbie", "short"), 422, "invalid_value");
    assert_error(bad("newbie", "password123"), 422, "common_password");
    assert_error(
        bad(&"n".repeat(100_000), "a-fine-password-1"),
        422,
        "invalid_value",
    );
    assert_error(bad("root", "a-fine-password-1"), 409, "conflict");
    assert_eq!(invitations(&app, &admin)[0]["status"], "pending");
    let res = accept(&app, &code, "newbie");
    assert_eq!(res.status(), 200);
    assert_eq!(body(res)["user"]["role"], "admin");
}

#[test]
fn the_listing_is_paged_with_a_cursor() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let ids: Vec<_> = (0..3).map(|_| invite(&app, &admin, "user").0).collect();
    let mut seen = Vec::new();
    let mut path = "/v1/invitations?limit=2".to_owned();
    loop {
        let page = body(app.get(&path, Some(&admin)));
        seen.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/invitations?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(seen, expected);
    for query in ["limit=0", "limit=101", "cursor=garbage"] {
        let res = app.get(&format!("/v1/invitations?{query}"), Some(&admin));
        assert_error(res, 422, "invalid_value");
    }
}

#[test]
fn single_user_mode_has_no_invitations() {
    let app = spawn_app(|_| {});
    for (method, path) in [
        ("GET", "/v1/invitations"),
        ("POST", "/v1/invitations"),
        ("DELETE", "/v1/invitations/abc"),
        ("POST", "/v1/auth/accept-invite"),
    ] {
        let res = app
            .request(method, path, None)
            .json(&json!({"role": "user", "code": "x", "username": "u", "password": "p"}))
            .send()
            .expect("send");
        assert_error(res, 404, "multi_user_disabled");
    }
}

#[test]
fn an_administrator_who_loses_the_role_takes_their_pending_invitations_along() {
    let app = spawn_multi_user();
    let root = app.setup_admin();
    let (second_id, _) = app.create_user(&root, "second", "admin");
    let second = app.token("second", &password_of("second"));
    let (_, comeback) = invite(&app, &second, "admin");
    let (_, kept) = invite(&app, &root, "user");
    // Demoted: their invitation can no longer bring anyone (them) back as
    // an admin; another admin's stays valid.
    let res = app.patch(
        &format!("/v1/users/{second_id}"),
        Some(&root),
        json!({"role": "user"}),
    );
    assert_eq!(res.status(), 200);
    assert_eq!(accept(&app, &comeback, "back-door").status(), 403);
    let statuses: Vec<Value> = invitations(&app, &root)
        .iter()
        .map(|i| i["status"].clone())
        .collect();
    assert!(statuses.contains(&json!("revoked")), "{statuses:?}");
    assert_eq!(accept(&app, &kept, "newcomer").status(), 200);
}
