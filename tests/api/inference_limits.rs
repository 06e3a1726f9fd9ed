//! Hostile inference requests: keep-alive values built to crash the
//! server, residency changes by callers who may not manage models, and one
//! client trying to take every request slot.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, body, spawn_with_models};

/// Multi-user mode with quotas off: these tests are about the engine's own
/// bounds, which must hold whatever the quotas (tested in `quota.rs`) are.
fn spawn_without_quotas() -> TestApp {
    spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.quota_guest = offgrid_config::RoleQuota::UNLIMITED;
        s.quota_user = offgrid_config::RoleQuota::UNLIMITED;
        s.quota_viewer = offgrid_config::RoleQuota::UNLIMITED;
    })
}

const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";

fn chat(keep_alive: Value, max_tokens: u32) -> Value {
    json!({
        "model": CHAT,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": max_tokens,
        "keep_alive": keep_alive,
    })
}

fn chat_status(app: &crate::helpers::TestApp, auth: Option<&str>) -> Value {
    body(app.get(&format!("/v1/models/{CHAT}"), auth))
}

#[test]
fn a_keep_alive_of_many_signs_is_refused_not_a_crash() {
    let app = spawn_without_quotas();
    // Nearly a megabyte of "- - - …": once one recursion per sign.
    let hostile = "- ".repeat(400_000) + "1";
    assert_error(
        app.post("/v1/chat/completions", None, chat(json!(hostile), 1)),
        400,
        "invalid_value",
    );
    let embed = json!({"model": EMBED, "input": "hi", "keep_alive": "-".repeat(500_000)});
    assert_error(
        app.post("/v1/embeddings", None, embed),
        400,
        "invalid_value",
    );
    assert_eq!(app.get("/health", None).status(), 200, "still serving");
}

#[test]
fn a_huge_keep_alive_is_clamped_and_listing_keeps_working() {
    // Single-user mode: the owner may manage models, so the value applies.
    let app = spawn_with_models(|_| {});
    for huge in [json!(1e19), json!(f64::MAX), json!("99999999999999999999h")] {
        let res = app.post("/v1/chat/completions", None, chat(huge, 1));
        assert_eq!(res.status(), 200);
    }
    // Several reaper rounds: a panic there used to poison the listing.
    std::thread::sleep(Duration::from_millis(1200));
    let list = app.get("/v1/models", None);
    assert_eq!(list.status(), 200);
    let m = chat_status(&app, None);
    assert_eq!(m["loaded"], true);
    let left = m["expires_in"].as_u64().expect("a finite keep-alive");
    assert!(left > 364 * 86_400 && left <= 365 * 86_400, "{left}");
}

#[test]
fn only_model_managers_change_how_long_a_model_stays_loaded() {
    let app = spawn_without_quotas();
    let admin = app.setup_admin();
    // A guest asks to keep the model forever, then to unload it at once:
    // both are accepted as requests but leave the server's default.
    for ka in [json!(-1), json!("0"), json!("24h")] {
        assert_eq!(
            app.post("/v1/chat/completions", None, chat(ka, 1)).status(),
            200
        );
        let m = chat_status(&app, Some(&admin));
        assert_eq!(m["loaded"], true, "a guest's 0 does not unload it");
        let left = m["expires_in"].as_u64().expect("default keep-alive");
        assert!(left <= 300, "{left}");
    }
    // A malformed value is still an error for everyone.
    assert_error(
        app.post("/v1/chat/completions", None, chat(json!("soon"), 1)),
        400,
        "invalid_value",
    );
    // The administrator's value applies.
    assert_eq!(
        app.post("/v1/chat/completions", Some(&admin), chat(json!(-1), 1))
            .status(),
        200
    );
    assert_eq!(chat_status(&app, Some(&admin))["expires_in"], Value::Null);
}

#[test]
fn one_client_cannot_hold_every_request_slot() {
    let app = spawn_without_quotas();
    let admin = app.setup_admin();
    let long = |stream: bool| {
        json!({
            "model": CHAT,
            "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
            "max_tokens": 2000,
            "stream": stream,
        })
    };
    // A guest opens streams and never reads them.
    let mut held = Vec::new();
    for _ in 0..8 {
        let res = app.post("/v1/chat/completions", None, long(true));
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    // The ninth is refused for this guest only.
    let refused = assert_error(
        app.post("/v1/chat/completions", None, long(true)),
        429,
        "too_many_requests",
    );
    assert!(refused["error"]["message"].as_str().is_some());
    // Someone else is still served, beside the guest's streams (slowly on
    // a busy machine: the wait is not what this test measures).
    let res = app
        .request("POST", "/v1/chat/completions", Some(&admin))
        .json(&json!({"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}))
        .timeout(Duration::from_secs(600))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 200);
    // Hanging up gives the guest's share back (the engine notices the
    // closed connections and drops their work).
    drop(held);
    let mut accepted = false;
    for _ in 0..100 {
        let res = app.post("/v1/chat/completions", None, chat(Value::Null, 1));
        if res.status() == 200 {
            accepted = true;
            break;
        }
        assert_eq!(res.status(), 429);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(accepted, "the guest's share came back after hanging up");
}

#[test]
fn one_client_cannot_queue_unbounded_embedding_work() {
    let app = spawn_without_quotas();
    // Load the model first, so the next two are admitted at once.
    let warm = json!({"model": EMBED, "input": "warm up"});
    assert_eq!(app.post("/v1/embeddings", None, warm).status(), 200);
    // Two requests of several seconds' work each, then a third at once.
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(30);
    let big = json!({"model": EMBED, "input": vec![text; 64]});
    let base = app.base.clone();
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (url, body) = (format!("{base}/v1/embeddings"), big.clone());
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(url)
                    .json(&body)
                    .timeout(Duration::from_secs(600))
                    .send()
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert_error(
        app.post(
            "/v1/embeddings",
            None,
            json!({"model": EMBED, "input": "one more"}),
        ),
        429,
        "too_many_requests",
    );
    for s in senders {
        assert_eq!(s.join().expect("thread").expect("response"), 200);
    }
}

#[test]
fn guests_from_many_addresses_share_one_bounded_part_of_the_queue() {
    let app = spawn_without_quotas();
    let admin = app.setup_admin();
    let long = json!({
        "model": CHAT,
        "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
        "max_tokens": 500,
        "stream": true,
    });
    // Guests from five loopback addresses, each within its own limit of 8,
    // together past the guests' share (half the queue: 32).
    let mut held = Vec::new();
    let mut refused = 0;
    for host in 2..=6u8 {
        let client = reqwest::blocking::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, host]))
            .build()
            .expect("client");
        for _ in 0..8 {
            let res = client
                .post(app.url("/v1/chat/completions"))
                .json(&long)
                .send()
                .expect("send");
            match res.status().as_u16() {
                200 => held.push(res),
                503 => {
                    let b = body(res);
                    assert_eq!(b["error"]["code"], "server_busy", "{b}");
                    refused += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!(held.len(), 32, "the guests' share");
    assert_eq!(refused, 8);
    // A signed-in user is still admitted.
    let res = app
        .request("POST", "/v1/chat/completions", Some(&admin))
        .json(&json!({"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}))
        .timeout(Duration::from_secs(600))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 200);
    drop(held);
}

#[test]
fn a_client_that_gives_up_on_a_plain_request_frees_its_place() {
    let app = spawn_without_quotas();
    // Load the model first, so the requests below are generating (not
    // loading) when their clients give up.
    assert_eq!(
        app.post("/v1/chat/completions", None, chat(Value::Null, 1))
            .status(),
        200
    );
    let long = json!({
        "model": CHAT,
        "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
        "max_tokens": 4000,
    });
    // Eight non-streaming requests whose clients hang up after a second:
    // each would hold the guest's place for minutes if its work went on.
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    for _ in 0..8 {
        let res = impatient
            .post(app.url("/v1/chat/completions"))
            .json(&long)
            .send();
        assert!(res.is_err(), "timed out");
    }
    let mut accepted = false;
    for _ in 0..100 {
        let res = app.post("/v1/chat/completions", None, chat(Value::Null, 1));
        if res.status() == 200 {
            accepted = true;
            break;
        }
        assert_eq!(res.status(), 429);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        accepted,
        "the abandoned requests stopped and gave their places back"
    );
}
