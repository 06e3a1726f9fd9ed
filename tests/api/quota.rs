//! Quotas over HTTP with the real default models: exact under concurrency,
//! each limit refused with 429, `Retry-After` and `X-RateLimit-*`, guests
//! counted per address, and the administrators' view and changes.

use std::time::{Duration, Instant};

use offgrid_config::RoleQuota;
use serde_json::{Value, json};

use crate::helpers::*;

const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";

fn embed() -> Value {
    json!({"model": EMBED, "input": "hello"})
}

fn header(res: &reqwest::blocking::Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// A user with these overrides; returns (id, key).
fn user_with(app: &TestApp, admin: &str, name: &str, overrides: Value) -> (String, String) {
    let (id, key) = app.create_user(admin, name, "user");
    let res = app
        .request("PUT", &format!("/v1/users/{id}/quota"), Some(admin))
        .json(&overrides)
        .send()
        .expect("PUT");
    assert_eq!(res.status(), 200, "set quota");
    (id, key)
}

fn quota_of(app: &TestApp, auth: Option<&str>) -> Value {
    body(app.get("/v1/users/me/quota", auth))
}

#[test]
fn twenty_parallel_requests_against_five_per_minute_give_exactly_five() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, key) = user_with(&app, &admin, "ann", json!({"requests_per_minute": 5}));
    // The model is loaded first, so every request is as quick as the next.
    let chat = json!({"model": CHAT, "max_tokens": 1,
        "messages": [{"role": "user", "content": "hi"}]});
    let warm = app.post("/v1/chat/completions", Some(&admin), chat.clone());
    assert_eq!(warm.status(), 200);
    assert!(
        header(&warm, "x-ratelimit-limit").is_none(),
        "admins are unlimited"
    );
    let barrier = std::sync::Barrier::new(20);
    let results: Vec<(u16, Option<u64>, Option<u64>, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let res = app.post("/v1/chat/completions", Some(&key), chat.clone());
                    let status = res.status().as_u16();
                    let retry = header(&res, "retry-after");
                    let remaining = header(&res, "x-ratelimit-remaining");
                    (status, retry, remaining, body(res))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ok: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok.len(), 5, "{results:?}");
    assert_eq!(refused.len(), 15, "{results:?}");
    let mut remaining: Vec<u64> = ok.iter().filter_map(|r| r.2).collect();
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        vec![0, 1, 2, 3, 4],
        "each success says what is left"
    );
    for (_, retry, left, b) in &refused {
        assert_eq!(b["error"]["code"], "rate_limit_exceeded", "{b}");
        assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
        assert_eq!(*left, Some(0));
    }
    let q = quota_of(&app, Some(&key));
    assert_eq!(q["limits"]["requests_per_minute"], 5);
    assert_eq!(q["used"]["requests_per_minute"], 5);
    assert!(q["resets_at"]["requests_per_minute"].is_string(), "{q}");
}

#[test]
fn tokens_per_day_and_generations_at_once_are_limited() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, key) = user_with(
        &app,
        &admin,
        "ann",
        json!({"tokens_per_day": 30, "max_concurrent": 1}),
    );
    let ask = |max_tokens: u32, stream: bool| {
        app.post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": CHAT, "max_tokens": max_tokens, "stream": stream,
                "messages": [{"role": "user", "content": "Tell me a long story."}]}),
        )
    };
    // One generation at a time: a stream left open holds the place.
    let open = ask(2000, true);
    assert_eq!(open.status(), 200);
    let second = ask(1, false);
    assert_eq!(second.status(), 429);
    assert!(header(&second, "retry-after").is_some());
    assert_eq!(header(&second, "x-ratelimit-limit"), Some(1));
    let b = body(second);
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at once")),
        "{b}"
    );
    assert_eq!(quota_of(&app, Some(&key))["used"]["max_concurrent"], 1);
    drop(open);
    // The place comes back once the engine notices the hang-up; that
    // stream's tokens count too, so the day's budget is used up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let res = ask(1, false);
        if res.status() == 429 {
            let b = body(res);
            if b["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("daily"))
            {
                break b;
            }
        } else {
            assert_eq!(res.status(), 200);
        }
        assert!(Instant::now() < deadline, "never refused for tokens");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(refused["error"]["code"], "rate_limit_exceeded");
    let q = quota_of(&app, Some(&key));
    assert!(q["used"]["tokens_per_day"].as_u64() >= Some(30), "{q}");
    assert_eq!(q["limits"]["tokens_per_day"], 30);
}

#[test]
fn guests_are_counted_per_address_and_users_see_their_headers() {
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.quota_guest = RoleQuota {
            requests_per_minute: Some(2),
            ..RoleQuota::UNLIMITED
        };
    });
    let from = |ip: &str| {
        reqwest::blocking::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
            .build()
            .expect("client")
    };
    let (one, two) = (from("127.0.0.1"), from("127.0.0.2"));
    let send = |c: &reqwest::blocking::Client| {
        c.post(app.url("/v1/embeddings"))
            .json(&embed())
            .send()
            .expect("send")
    };
    assert_eq!(send(&one).status(), 200);
    let second = send(&one);
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ratelimit-remaining"), Some(0));
    assert_eq!(send(&one).status(), 429, "this address is done");
    assert_eq!(send(&two).status(), 200, "another address is not");
    let q: Value = one
        .get(app.url("/v1/users/me/quota"))
        .send()
        .expect("quota")
        .json()
        .expect("json");
    assert_eq!(q["limits"]["requests_per_minute"], 2);
    assert_eq!(q["used"]["requests_per_minute"], 2);

    // A user's default (60 per minute) shows on every inference answer.
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "ann", "user");
    let res = app.post("/v1/embeddings", Some(&key), embed());
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-limit"), Some(60));
    assert_eq!(header(&res, "x-ratelimit-remaining"), Some(59));
    assert!(header(&res, "x-ratelimit-reset").is_some_and(|s| s <= 60));
}

#[test]
fn administrators_view_change_and_reset_a_users_quota() {
    let app = spawn_multi_user();
    let admin = app.setup_admin();
    let (ann_id, ann) = app.create_user(&admin, "ann", "user");
    let path = format!("/v1/users/{ann_id}/quota");
    let put = |auth: &str, body: Value| {
        app.request("PUT", &path, Some(auth))
            .json(&body)
            .send()
            .expect("PUT")
    };
    let q = body(app.get(&path, Some(&admin)));
    assert_eq!(q["limits"]["requests_per_minute"], 60, "the role's default");
    assert_eq!(q["limits"]["tokens_per_day"], Value::Null, "unlimited");
    assert_eq!(q["overrides"], json!({}));
    // A number, null (unlimited) and absent (the role's default).
    let q = body(put(
        &admin,
        json!({"requests_per_minute": null, "tokens_per_day": 1000}),
    ));
    assert_eq!(q["limits"]["requests_per_minute"], Value::Null);
    assert_eq!(q["limits"]["tokens_per_day"], 1000);
    assert_eq!(
        q["overrides"],
        json!({"requests_per_minute": null, "tokens_per_day": 1000})
    );
    assert_eq!(quota_of(&app, Some(&ann))["limits"]["tokens_per_day"], 1000);
    // Bad values and callers.
    assert_error(
        put(&admin, json!({"max_concurrent": 0})),
        422,
        "invalid_value",
    );
    assert_error(
        put(&admin, json!({"max_concurrent": -1})),
        400,
        "invalid_request",
    );
    assert_error(put(&admin, json!({"speed": 1})), 400, "invalid_request");
    assert_error(put(&ann, json!({})), 403, "insufficient_permissions");
    assert_error(
        app.get("/v1/users/no-such-user/quota", Some(&admin)),
        404,
        "user_not_found",
    );
    // Back to the defaults; the change is audited.
    let q = body(put(&admin, json!({})));
    assert_eq!(q["limits"]["requests_per_minute"], 60);
    let log = body(app.get("/v1/audit?action=quota.", Some(&admin)));
    assert_eq!(log["data"].as_array().map(Vec::len), Some(2), "{log}");
    // Requests count once admitted, even for a model that is not there.
    for _ in 0..2 {
        let res = app.post(
            "/v1/chat/completions",
            Some(&ann),
            json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(res.status(), 404);
    }
    assert_eq!(quota_of(&app, Some(&ann))["used"]["requests_per_minute"], 2);
    let res = app.post(&format!("{path}/reset"), Some(&admin), json!({}));
    assert_eq!(res.status(), 204);
    assert_eq!(quota_of(&app, Some(&ann))["used"]["requests_per_minute"], 0);
    // The single-user owner and admins are unlimited.
    let me = quota_of(&app, Some(&admin));
    assert_eq!(
        me["limits"],
        json!({"requests_per_minute": null, "tokens_per_day": null, "max_concurrent": null})
    );
}

#[test]
fn a_client_that_hangs_up_still_pays_for_what_was_generated() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "ann", "user");
    let mut res = app.post(
        "/v1/chat/completions",
        Some(&key),
        json!({"model": CHAT, "stream": true, "max_tokens": 2000,
            "messages": [{"role": "user", "content": "Write a very long story."}]}),
    );
    assert_eq!(res.status(), 200);
    // Read some of the answer, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.iter().filter(|&&b| b == b'\n').count() < 30 {
        let n = std::io::Read::read(&mut res, &mut buf).expect("read");
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(res);
    let deadline = Instant::now() + Duration::from_secs(60);
    let used = loop {
        let used = quota_of(&app, Some(&key))["used"]["tokens_per_day"]
            .as_u64()
            .unwrap_or(0);
        if used > 0 || Instant::now() > deadline {
            break used;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The prompt and the tokens generated before the hang-up.
    assert!(used > 10, "counted {used}");
    let usage = body(app.get("/v1/usage", Some(&key)));
    assert!(
        usage["data"][0]["completion_tokens"].as_u64() > Some(0),
        "{usage}"
    );
}
