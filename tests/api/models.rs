//! Model management over HTTP: listing with registry fields, admin-only
//! import and removal, and keep-alive unloading, with the real default
//! chat model in a private models folder.

use std::time::{Duration, Instant};

use offgrid_config::KeepAlive;
use serde_json::{Value, json};

use crate::helpers::{
    assert_error, body, models_dir, spawn_with_models, spawn_with_private_models,
};

const CHAT: &str = "smollm2-135m-instruct";

fn installed_gguf() -> String {
    models_dir()
        .join(CHAT)
        .join("SmolLM2-135M-Instruct.Q4_1.gguf")
        .display()
        .to_string()
}

fn hello(model: &str, keep_alive: Value) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 4,
        "temperature": 0,
        "keep_alive": keep_alive,
    })
}

/// Polls `GET /v1/models/{id}` until `loaded` is `want` (a wait for an
/// asynchronous event, not a timing assertion: the deadline is generous).
fn wait_loaded(app: &crate::helpers::TestApp, id: &str, want: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = body(app.get(&format!("/v1/models/{id}"), None));
        if m["loaded"] == want {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became loaded={want}: {m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn models_list_what_the_registry_records() {
    let app = spawn_with_private_models(|_| {});
    let list = body(app.get("/v1/models", None));
    let m = &list["data"][0];
    assert_eq!(m["id"], CHAT);
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "offgrid");
    assert_eq!(m["type"], "chat");
    assert_eq!(m["format"], "gguf");
    assert_eq!(m["architecture"], "llama");
    assert_eq!(m["quantization"], "Q4_1");
    assert_eq!(m["context_length"], 8192);
    assert_eq!(m["sha256"].as_str().map(str::len), Some(64));
    assert!(m["size_bytes"].as_u64().is_some_and(|n| n > 50_000_000));
    assert_eq!(m["loaded"], false, "models load on first use");
}

/// Puts the installed GGUF into the app's model import directory (a hard
/// link where possible) and returns the name to import it by.
fn into_import_dir(app: &crate::helpers::TestApp) -> String {
    let target = app.home.path().join("import/smollm2.gguf");
    if std::fs::hard_link(installed_gguf(), &target).is_err() {
        std::fs::copy(installed_gguf(), &target).expect("copy model into the import dir");
    }
    "smollm2.gguf".to_owned()
}

#[test]
fn an_admin_imports_and_removes_a_model_over_http() {
    let app = spawn_with_private_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let gguf = into_import_dir(&app);
    let (_, user_key) = app.create_user(&admin, "alice", "user");

    // Only administrators manage models.
    assert_error(
        app.post(
            "/v1/models",
            Some(&user_key),
            json!({"path": gguf, "name": "copy"}),
        ),
        403,
        "insufficient_permissions",
    );
    assert_error(
        app.delete(&format!("/v1/models/{CHAT}"), Some(&user_key)),
        403,
        "insufficient_permissions",
    );

    let res = app.post(
        "/v1/models",
        Some(&admin),
        json!({"path": gguf, "name": "copy"}),
    );
    assert_eq!(res.status(), 201);
    let created = body(res);
    assert_eq!(created["id"], "copy");
    assert_eq!(created["architecture"], "llama");

    // Every user sees it and can chat with it.
    let ids: Vec<Value> = body(app.get("/v1/models", Some(&user_key)))["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("copy"), json!(CHAT)]);
    let res = app.post(
        "/v1/chat/completions",
        Some(&user_key),
        hello("copy", Value::Null),
    );
    assert_eq!(res.status(), 200);

    // Refusals, each with its own code, and nothing installed by them.
    assert_error(
        app.post(
            "/v1/models",
            Some(&admin),
            json!({"path": gguf, "name": "copy"}),
        ),
        409,
        "model_exists",
    );
    assert_error(
        app.post(
            "/v1/models",
            Some(&admin),
            json!({"path": gguf, "name": "../escape"}),
        ),
        400,
        "invalid_model_name",
    );
    assert_error(
        app.post(
            "/v1/models",
            Some(&admin),
            json!({"path": "relative/file.gguf"}),
        ),
        400,
        "invalid_path",
    );
    assert_error(
        app.post(
            "/v1/models",
            Some(&admin),
            json!({"path": "/nonexistent/file.gguf"}),
        ),
        400,
        "invalid_path",
    );
    let junk = app.home.path().join("import/junk.gguf");
    std::fs::write(&junk, b"not a model at all").expect("write junk");
    assert_error(
        app.post(
            "/v1/models",
            Some(&admin),
            json!({"path": junk.display().to_string()}),
        ),
        400,
        "invalid_model",
    );
    assert_eq!(
        body(app.get("/v1/models", Some(&admin)))["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Removal: gone from the list, for chat, and from disk.
    let res = app.delete("/v1/models/copy", Some(&admin));
    assert_eq!(res.status(), 200);
    assert_eq!(
        body(res),
        json!({"id": "copy", "object": "model", "deleted": true})
    );
    assert_error(
        app.get("/v1/models/copy", Some(&user_key)),
        404,
        "model_not_found",
    );
    assert_error(
        app.post(
            "/v1/chat/completions",
            Some(&user_key),
            hello("copy", Value::Null),
        ),
        404,
        "model_not_found",
    );
    assert!(!app.home.path().join("models/copy").exists());
    assert_error(
        app.delete("/v1/models/copy", Some(&admin)),
        404,
        "model_not_found",
    );
}

#[test]
fn keep_alive_zero_unloads_after_the_request_and_minus_one_keeps_it() {
    let app = spawn_with_private_models(|_| {});
    let res = app.post("/v1/chat/completions", None, hello(CHAT, json!("-1")));
    assert_eq!(res.status(), 200);
    let m = wait_loaded(&app, CHAT, true);
    assert_eq!(m["expires_in"], Value::Null, "-1 keeps it loaded: {m}");

    let res = app.post("/v1/chat/completions", None, hello(CHAT, json!(0)));
    assert_eq!(res.status(), 200);
    wait_loaded(&app, CHAT, false);

    // A number of seconds is reported back as the time left.
    let res = app.post("/v1/chat/completions", None, hello(CHAT, json!("1h")));
    assert_eq!(res.status(), 200);
    let m = wait_loaded(&app, CHAT, true);
    assert!(
        m["expires_in"]
            .as_u64()
            .is_some_and(|s| s > 3500 && s <= 3600),
        "{m}"
    );

    assert_error(
        app.post("/v1/chat/completions", None, hello(CHAT, json!("soon"))),
        400,
        "invalid_value",
    );
}

#[test]
fn the_keep_alive_setting_is_the_default() {
    let app = spawn_with_private_models(|s| s.keep_alive = KeepAlive::For(Duration::ZERO));
    let res = app.post("/v1/chat/completions", None, hello(CHAT, Value::Null));
    assert_eq!(res.status(), 200);
    wait_loaded(&app, CHAT, false);
    // And it loads again on the next request.
    let res = app.post("/v1/chat/completions", None, hello(CHAT, json!("5m")));
    assert_eq!(res.status(), 200);
    wait_loaded(&app, CHAT, true);
}

#[test]
fn loading_past_max_loaded_models_unloads_the_least_recently_used() {
    let app = spawn_with_models(|s| s.max_loaded_models = 1);
    let res = app.post("/v1/chat/completions", None, hello(CHAT, json!(-1)));
    assert_eq!(res.status(), 200);
    wait_loaded(&app, CHAT, true);
    let res = app.post(
        "/v1/embeddings",
        None,
        json!({"model": "all-minilm-l6-v2", "input": "hello", "keep_alive": -1}),
    );
    assert_eq!(res.status(), 200);
    // The chat model was kept "forever", yet made room for the other.
    let embed = body(app.get("/v1/models/all-minilm-l6-v2", None));
    assert_eq!(embed["loaded"], true);
    let chat = body(app.get(&format!("/v1/models/{CHAT}"), None));
    assert_eq!(chat["loaded"], false, "{chat}");
}
