//! `GET /metrics`: who may read it (administrators, or a scraper with
//! `metrics_token`), and what it counts after real requests on the real
//! models, parsed by the Prometheus project's own OpenMetrics parser (the
//! `prometheus-client` Python package that `cargo xtask tools` pins).

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::openai_client::venv_python;

const TOKEN: &str = "scrape-token-0123456789abcdef";

/// Parses an exposition with `prometheus_client.openmetrics.parser` and
/// returns `{name: [[labels, value], ...]}` for every sample.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"#;

fn parse(text: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(venv_python())
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(parsed: &Value, name: &str, labels: Value) -> Option<f64> {
    parsed[name].as_array()?.iter().find_map(|s| {
        let have = s[0].as_object()?;
        let all = labels
            .as_object()?
            .iter()
            .all(|(k, v)| have.get(k) == Some(v));
        all.then(|| s[1].as_f64()).flatten()
    })
}

/// The sum of every sample of `name`.
fn total(parsed: &Value, name: &str) -> f64 {
    parsed[name]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s[1].as_f64())
        .sum()
}

fn scrape(app: &TestApp, auth: Option<&str>) -> reqwest::blocking::Response {
    app.get("/metrics", auth)
}

#[test]
fn metrics_are_for_administrators_or_the_scrape_token() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        s.metrics_token = Some(offgrid_config::Secret::new(TOKEN));
    });
    let admin = app.setup_admin();
    let (_, user) = app.create_user(&admin, "mu", "user");
    assert_eq!(scrape(&app, None).status(), 401);
    assert_eq!(scrape(&app, Some(&user)).status(), 403);
    assert_eq!(
        scrape(&app, Some("scrape-token-0123456789abcdeX")).status(),
        401
    );
    for who in [admin.as_str(), TOKEN] {
        let res = scrape(&app, Some(who));
        assert_eq!(res.status(), 200);
        let kind = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        assert!(res.text().expect("body").ends_with("# EOF\n"));
    }
    // The scheme is case-insensitive, as for every bearer credential.
    let res = app
        .request("GET", "/metrics", None)
        .header("authorization", format!("bearer  {TOKEN}"))
        .send()
        .expect("send");
    assert_eq!(res.status(), 200);
    // The refusals were counted, by reason.
    let parsed = parse(&scrape(&app, Some(TOKEN)).text().expect("body"));
    assert_eq!(
        total(&parsed, "offgrid_auth_failures_total"),
        3.0,
        "{parsed}"
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_auth_failures_total",
            json!({ "reason": "insufficient_permissions" })
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &parsed,
            "offgrid_http_requests_total",
            json!({ "route": "/metrics", "status": "403" })
        ) == Some(1.0),
        "{parsed}"
    );
    let config = body(app.get("/v1/system/config", None));
    assert_eq!(config["features"]["metrics"], true);
}

#[test]
fn metrics_count_requests_tokens_latencies_and_loads() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, alice) = app.create_user(&admin, "alice", "user");
    let chat = body(app.post(
        "/v1/chat/completions",
        Some(&alice),
        json!({ "model": "smollm2-135m-instruct", "max_tokens": 8, "temperature": 0,
                "messages": [{ "role": "user", "content": "Say hi." }] }),
    ));
    let completion = chat["usage"]["completion_tokens"]
        .as_f64()
        .unwrap_or_default();
    let prompt = chat["usage"]["prompt_tokens"].as_f64().unwrap_or_default();
    let ollama = body(app.post(
        "/api/generate",
        Some(&alice),
        json!({ "model": "smollm2-135m-instruct", "prompt": "Say hi.", "stream": false,
                "options": { "num_predict": 4 } }),
    ));
    assert_eq!(ollama["done"], true);
    app.post(
        "/v1/embeddings",
        Some(&alice),
        json!({ "model": "all-minilm-l6-v2", "input": "hello" }),
    );
    assert_eq!(app.get("/v1/models/nope", Some(&alice)).status(), 404);

    let text = scrape(&app, Some(&admin)).text().expect("body");
    let parsed = parse(&text);
    let model = "smollm2-135m-instruct";
    assert_eq!(
        sample(
            &parsed,
            "offgrid_http_requests_total",
            json!({ "route": "/v1/chat/completions", "method": "POST", "api": "openai", "status": "200" })
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_http_requests_total",
            json!({ "route": "/v1/models/{id}", "status": "404" })
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_generated_tokens_total",
            json!({ "model": model, "api": "openai" })
        ),
        Some(completion)
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_prompt_tokens_total",
            json!({ "model": model, "api": "openai" })
        ),
        Some(prompt)
    );
    assert!(
        sample(
            &parsed,
            "offgrid_generated_tokens_total",
            json!({ "model": model, "api": "ollama" })
        )
        .is_some_and(|n| (1.0..=4.0).contains(&n))
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_generations_total",
            json!({ "model": model, "api": "ollama" })
        ),
        Some(1.0)
    );
    // Histograms: one first token per generation; gaps between tokens.
    assert_eq!(
        sample(
            &parsed,
            "offgrid_time_to_first_token_seconds_count",
            json!({ "model": model })
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &parsed,
            "offgrid_inter_token_latency_seconds_count",
            json!({ "model": model })
        )
        .is_some_and(|n| n >= completion - 1.0)
    );
    assert!(
        sample(
            &parsed,
            "offgrid_generation_duration_seconds_sum",
            json!({ "model": model, "api": "openai" })
        )
        .is_some_and(|s| s > 0.0)
    );
    assert_eq!(
        sample(
            &parsed,
            "offgrid_queue_wait_seconds_count",
            json!({ "model": model })
        ),
        Some(2.0)
    );
    // Both models were loaded once, and are in memory; nothing runs now.
    for m in [model, "all-minilm-l6-v2"] {
        assert_eq!(
            sample(&parsed, "offgrid_model_loads_total", json!({ "model": m })),
            Some(1.0),
            "{m}"
        );
        assert_eq!(
            sample(
                &parsed,
                "offgrid_model_load_seconds_count",
                json!({ "model": m })
            ),
            Some(1.0)
        );
    }
    assert_eq!(
        sample(&parsed, "offgrid_models_loaded", json!({})),
        Some(2.0)
    );
    assert_eq!(
        sample(&parsed, "offgrid_generations_running", json!({})),
        Some(0.0)
    );
    assert_eq!(
        sample(&parsed, "offgrid_generations_queued", json!({})),
        Some(0.0)
    );
    // Per user, by username.
    assert_eq!(
        sample(
            &parsed,
            "offgrid_user_requests_total",
            json!({ "user": "alice" })
        ),
        Some(3.0)
    );
    assert!(
        sample(
            &parsed,
            "offgrid_user_tokens_total",
            json!({ "user": "alice", "kind": "completion" })
        )
        .is_some_and(|n| n >= completion + 1.0)
    );

    // Switched off, no series names anyone.
    let quiet = spawn_with_models(|s| s.metrics_per_user = false);
    quiet.post(
        "/v1/embeddings",
        None,
        json!({ "model": "all-minilm-l6-v2", "input": "hello" }),
    );
    let text = scrape(&quiet, None).text().expect("body");
    assert!(!text.contains("offgrid_user_"), "{text}");
    assert!(
        text.contains("offgrid_prompt_tokens_total{model=\"all-minilm-l6-v2\""),
        "{text}"
    );
}

#[test]
fn the_metrics_history_charts_the_same_figures_for_administrators_only() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, alice) = app.create_user(&admin, "alice", "user");
    assert_eq!(app.get("/v1/metrics/history", Some(&alice)).status(), 403);
    assert_eq!(app.get("/v1/metrics/history", None).status(), 401);
    let chat = body(app.post(
        "/v1/chat/completions",
        Some(&alice),
        json!({ "model": "smollm2-135m-instruct", "max_tokens": 8, "temperature": 0,
                "messages": [{ "role": "user", "content": "Say hi." }] }),
    ));
    let completion = chat["usage"]["completion_tokens"].as_u64().unwrap_or(0);
    assert!(completion > 0);
    let history = body(app.get("/v1/metrics/history", Some(&admin)));
    assert_eq!(history["interval_seconds"], 10);
    let points = history["points"].as_array().expect("points");
    // The server sampled at start; the last point runs from there to now.
    let sum = |key: &str| points.iter().filter_map(|p| p[key].as_u64()).sum::<u64>();
    assert_eq!(sum("generated_tokens"), completion, "{history}");
    assert!(sum("requests") >= 1, "{history}");
    // Wherever a sample fell, one point holds the chat's timings.
    let ttft = points
        .iter()
        .filter_map(|p| p["time_to_first_token"]["p50"].as_f64())
        .fold(0.0, f64::max);
    assert!(ttft > 0.0 && ttft < 65.0, "{history}");
    assert!(
        points
            .iter()
            .any(|p| p["tokens_per_second"].as_f64().is_some_and(|t| t > 0.0)),
        "{history}"
    );
    let alice_tokens: u64 = points
        .iter()
        .flat_map(|p| p["users"].as_array().cloned().unwrap_or_default())
        .filter(|u| u["user"] == "alice")
        .filter_map(|u| u["tokens"].as_u64())
        .sum();
    assert_eq!(
        alice_tokens,
        chat["usage"]["total_tokens"].as_u64().unwrap_or(0)
    );
}
