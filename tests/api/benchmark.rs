//! `POST /v1/benchmark` and its history: a real measurement through the
//! engine with the real model, stored; bounded parameters; administrators
//! run it, anyone who sees models reads the history.

use serde_json::json;

use crate::helpers::*;

#[test]
fn a_benchmark_measures_the_model_through_the_engine_and_is_kept() {
    let app = spawn_with_models(|_| {});
    let first = body(app.post("/v1/benchmark", None, json!({})));
    assert_eq!(first["model"], "smollm2-135m-instruct");
    let prompt = first["prompt_tokens"].as_i64().unwrap_or_default();
    assert!((192..=320).contains(&prompt), "about 256: {first}");
    let generated = first["generated_tokens"].as_i64().unwrap_or_default();
    assert!((2..=64).contains(&generated), "{first}");
    for key in ["prompt_tps", "decode_tps", "ttft_ms"] {
        assert!(
            first[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {first}"
        );
    }
    assert!(first["threads"].as_i64().is_some_and(|t| t >= 1));
    assert!(first["simd"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(first["cpu"].as_str().is_some_and(|s| !s.is_empty()));

    let second = body(app.post(
        "/v1/benchmark",
        None,
        json!({ "model": "smollm2-135m-instruct", "prompt_tokens": 64, "max_tokens": 8 }),
    ));
    assert!(second["generated_tokens"].as_i64().is_some_and(|n| n <= 8));
    assert!(second["prompt_tokens"].as_i64().is_some_and(|n| n < prompt));
    let history = body(app.get("/v1/benchmark", None));
    let ids: Vec<&str> = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            second["id"].as_str().unwrap_or("?"),
            first["id"].as_str().unwrap_or("?")
        ],
        "newest first"
    );
    assert_eq!(history["data"][1], first, "stored as answered");
    let one = body(app.get("/v1/benchmark?limit=1", None));
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    let none = body(app.get("/v1/benchmark?model=other", None));
    assert_eq!(none["data"], json!([]));

    // Bounded, and only chat models.
    for (req, status) in [
        (json!({ "prompt_tokens": 8 }), 400),
        (json!({ "prompt_tokens": 5000 }), 400),
        (json!({ "max_tokens": 1 }), 400),
        (json!({ "max_tokens": 10_000 }), 400),
        (json!({ "prompt_tokens": "many" }), 400),
        (json!({ "model": "all-minilm-l6-v2" }), 404),
        (json!({ "model": "nope" }), 404),
    ] {
        assert_eq!(
            app.post("/v1/benchmark", None, req.clone()).status(),
            status,
            "{req}"
        );
    }
    assert_eq!(app.get("/v1/benchmark?limit=0", None).status(), 400);
}

#[test]
fn administrators_run_benchmarks_users_if_allowed_and_read_the_history() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, user) = app.create_user(&admin, "bu", "user");
    assert_eq!(
        app.post("/v1/benchmark", Some(&user), json!({ "max_tokens": 2 }))
            .status(),
        403
    );
    let run = body(app.post(
        "/v1/benchmark",
        Some(&admin),
        json!({ "prompt_tokens": 32, "max_tokens": 2 }),
    ));
    let history = body(app.get("/v1/benchmark", Some(&user)));
    assert_eq!(history["data"][0]["id"], run["id"]);
    assert!(
        history["data"][0].get("user_id").is_none(),
        "who ran it stays private"
    );
    // Viewers never; users once the server allows it.
    let (_, viewer) = app.create_user(&admin, "bv", "viewer");
    let open = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.benchmark_users = true;
    });
    let admin = open.setup_admin();
    let (_, user) = open.create_user(&admin, "bu", "user");
    let (_, viewer2) = open.create_user(&admin, "bv", "viewer");
    for (server, who) in [(&app, &viewer), (&open, &viewer2)] {
        assert_eq!(
            server
                .post("/v1/benchmark", Some(who), json!({ "max_tokens": 2 }))
                .status(),
            403
        );
    }
    let mine = body(open.post(
        "/v1/benchmark",
        Some(&user),
        json!({ "prompt_tokens": 32, "max_tokens": 2 }),
    ));
    assert!(mine["decode_tps"].as_f64().unwrap_or(0.0) > 0.0, "{mine}");
}
