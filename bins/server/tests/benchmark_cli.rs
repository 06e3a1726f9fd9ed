//! `offgrid benchmark` against a real server: the figures as lines or
//! JSON, kept in the server's history; bad values and unknown models.

mod common;

use common::{offgrid, serve_with_models, stderr_line};

#[test]
fn benchmark_measures_on_a_running_server_and_prints_lines_or_json() {
    let server = serve_with_models();
    let home = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| {
        let mut all = vec!["benchmark"];
        all.extend(args);
        all.extend(["--url", server.url.as_str()]);
        offgrid(home.path(), &[], &all)
    };
    let out = cli(&["--prompt-tokens", "32", "--max-tokens", "4", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_line(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(run["model"], "smollm2-135m-instruct");
    assert!(run["prompt_tps"].as_f64().is_some_and(|v| v > 0.0), "{run}");
    assert!(
        run["generated_tokens"]
            .as_i64()
            .is_some_and(|n| (1..=4).contains(&n))
    );
    let out = cli(&[
        "smollm2-135m-instruct",
        "--prompt-tokens",
        "16",
        "--max-tokens",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_line(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("decode") && text.contains("tokens/s"),
        "{text}"
    );
    // Both runs are in the server's history.
    let history: serde_json::Value = reqwest::blocking::get(format!("{}/v1/benchmark", server.url))
        .and_then(|r| r.json())
        .expect("history");
    assert_eq!(history["data"].as_array().map(Vec::len), Some(2));
    // Refused values: a usage error; an unknown model: the server's message.
    assert_eq!(cli(&["--max-tokens", "1"]).status.code(), Some(2));
    let out = cli(&["no-such-model"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("no-such-model"),
        "{}",
        stderr_line(&out)
    );
}
