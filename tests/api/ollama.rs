//! Ollama's native API against the real models: listings, show, ps,
//! generate and chat (NDJSON and plain, the same engine as `/v1`), load
//! and unload, embeddings, errors as `{"error": "..."}`, and the same
//! credentials as `/v1` in multi-user mode.

use serde_json::{Value, json};

use crate::helpers::*;

const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";

/// An Ollama error: this status, and `{"error": "<non-empty string>"}`.
fn assert_ollama_error(res: reqwest::blocking::Response, status: u16) -> String {
    assert_eq!(res.status(), status);
    let b = body(res);
    let message = b["error"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{b}");
    assert_eq!(b.as_object().map(|o| o.len()), Some(1), "{b}");
    message
}

/// An NDJSON body: every line one JSON object, no blank lines, ending
/// with a newline.
fn ndjson(res: reqwest::blocking::Response) -> Vec<Value> {
    assert_eq!(res.status(), 200);
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("application/x-ndjson"), "{kind}");
    let text = res.text().expect("body");
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| {
            assert!(!l.trim().is_empty(), "blank line in {text:?}");
            serde_json::from_str::<Value>(l).expect("a JSON line")
        })
        .collect()
}

#[test]
fn ollama_lists_shows_and_versions_the_installed_models() {
    let app = spawn_with_models(|_| {});
    let v = body(app.get("/api/version", None));
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let tags = body(app.get("/api/tags", None));
    let models = tags["models"].as_array().expect("models");
    let mut names: Vec<&str> = models.iter().filter_map(|m| m["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, [format!("{EMBED}:latest"), format!("{CHAT}:latest")]);
    let chat = models
        .iter()
        .find(|m| m["model"] == format!("{CHAT}:latest"))
        .expect("chat model");
    assert_eq!(chat["details"]["format"], "gguf");
    assert_eq!(chat["details"]["family"], "llama");
    assert_eq!(chat["details"]["quantization_level"], "Q4_1");
    assert_eq!(chat["details"]["parameter_size"], "135M");
    assert!(chat["size"].as_u64().is_some_and(|s| s > 50_000_000));
    assert_eq!(chat["digest"].as_str().map(str::len), Some(64));
    assert!(
        chat["modified_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );

    // `id`, `id:latest`, `library/ID:LATEST` are the same model.
    for name in [
        CHAT,
        "smollm2-135m-instruct:latest",
        "library/SmolLM2-135M-Instruct:Latest",
    ] {
        let show = body(app.post("/api/show", None, json!({ "model": name })));
        assert_eq!(
            show["model_info"]["general.architecture"], "llama",
            "{name}"
        );
        assert_eq!(show["capabilities"], json!(["completion"]));
        assert!(
            show["model_info"]["llama.context_length"]
                .as_u64()
                .is_some_and(|c| c >= 2048)
        );
    }
    let show = body(app.post("/api/show", None, json!({ "name": EMBED })));
    assert_eq!(show["capabilities"], json!(["embedding"]));
    assert_eq!(show["model_info"]["bert.embedding_length"], 384);

    assert_ollama_error(app.post("/api/show", None, json!({ "model": "nope" })), 404);
    assert_ollama_error(
        app.post("/api/show", None, json!({ "model": format!("{CHAT}:3b") })),
        404,
    );
    assert_ollama_error(app.post("/api/show", None, json!({})), 400);
    assert_ollama_error(app.post("/api/show", None, json!({ "model": 7 })), 400);
    // Pull: installed is success; anything else cannot be downloaded here.
    let pulled = body(app.post("/api/pull", None, json!({ "model": CHAT, "stream": false })));
    assert_eq!(pulled, json!({ "status": "success" }));
    let lines = ndjson(app.post("/api/pull", None, json!({ "model": CHAT })));
    assert_eq!(lines, [json!({ "status": "success" })]);
    let offline = assert_ollama_error(
        app.post("/api/pull", None, json!({ "model": "llama3" })),
        404,
    );
    assert!(offline.contains("offline"), "{offline}");
}

#[test]
fn ollama_generate_and_chat_stream_ndjson_from_the_same_engine_as_v1() {
    let app = spawn_with_models(|_| {});
    let options = json!({ "temperature": 0, "num_predict": 24, "seed": 1 });
    let question = "Explain what a CPU does in one sentence.";

    // Chat: streamed chunks carry the message every time, and their text is
    // the plain answer's, which is /v1's greedy answer.
    let lines = ndjson(app.post(
        "/api/chat",
        None,
        json!({ "model": format!("{CHAT}:latest"), "options": options,
                "messages": [{ "role": "user", "content": question }] }),
    ));
    let (last, chunks) = lines.split_last().expect("lines");
    for c in &lines {
        assert_eq!(c["message"]["role"], "assistant", "{c}");
        assert_eq!(c["model"], format!("{CHAT}:latest"));
        assert!(c["created_at"].as_str().is_some_and(|t| t.contains('T')));
    }
    assert!(chunks.iter().all(|c| c["done"] == false));
    assert_eq!(last["done"], true);
    let eval_count = last["eval_count"].as_u64().unwrap_or_default();
    match last["done_reason"].as_str() {
        Some("length") => assert_eq!(eval_count, 24),
        Some("stop") => assert!((1..24).contains(&eval_count), "{last}"),
        other => panic!("done_reason {other:?}"),
    }
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[key].as_u64().is_some_and(|n| n > 0), "{key}: {last}");
    }
    assert!(last["total_duration"].as_u64() >= last["eval_duration"].as_u64());
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["message"]["content"].as_str())
        .collect();
    let plain = body(app.post(
        "/api/chat",
        None,
        json!({ "model": CHAT, "options": options, "stream": false,
                "messages": [{ "role": "user", "content": question }] }),
    ));
    assert_eq!(plain["message"]["content"], streamed.as_str());
    assert_eq!(plain["done"], true);
    assert_eq!(plain["prompt_eval_count"], last["prompt_eval_count"]);
    let openai = body(app.post(
        "/v1/chat/completions",
        None,
        json!({ "model": CHAT, "temperature": 0, "max_tokens": 24,
                "messages": [{ "role": "user", "content": question }] }),
    ));
    assert_eq!(
        openai["choices"][0]["message"]["content"],
        streamed.as_str()
    );
    assert_eq!(
        openai["usage"]["prompt_tokens"], last["prompt_eval_count"],
        "the same template and tokens"
    );

    // Generate: the prompt goes through the chat template, so it is the
    // same conversation; `raw` is the text as given.
    let generated = body(app.post(
        "/api/generate",
        None,
        json!({ "model": CHAT, "prompt": question, "options": options, "stream": false }),
    ));
    assert_eq!(generated["response"], streamed.as_str());
    assert!(generated.get("message").is_none());
    let lines = ndjson(app.post(
        "/api/generate",
        None,
        json!({ "model": CHAT, "prompt": "The capital of France is", "raw": true,
                "options": { "temperature": 0, "num_predict": 4, "stop": ["\n"] } }),
    ));
    let last = lines.last().expect("last");
    assert_eq!(last["done"], true);
    assert!(
        last["prompt_eval_count"].as_u64().is_some_and(|n| n < 10),
        "raw: no template around the prompt: {last}"
    );
    let text: String = lines
        .iter()
        .filter_map(|c| c["response"].as_str())
        .collect();
    assert!(text.contains("Paris"), "{text}");
}

#[test]
fn ollama_loads_and_unloads_on_an_empty_prompt_and_refuses_what_it_cannot_do() {
    let app = spawn_with_models(|_| {});
    let loaded = |app: &TestApp| -> Vec<String> {
        body(app.get("/api/ps", None))["models"]
            .as_array()
            .expect("models")
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(loaded(&app).is_empty());
    let res = body(app.post("/api/generate", None, json!({ "model": CHAT })));
    assert_eq!(res["done_reason"], "load");
    assert_eq!(res["done"], true);
    let ps = body(app.get("/api/ps", None));
    assert_eq!(ps["models"][0]["name"], format!("{CHAT}:latest"));
    assert!(
        ps["models"][0]["expires_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );
    assert_eq!(ps["models"][0]["size_vram"], 0);
    let res = body(app.post(
        "/api/chat",
        None,
        json!({ "model": CHAT, "messages": [], "keep_alive": 0 }),
    ));
    assert_eq!(res["done_reason"], "unload");
    assert_eq!(res["message"]["role"], "assistant");
    assert!(loaded(&app).is_empty());

    let chat = |extra: Value| {
        let mut req = json!({ "model": CHAT, "messages": [{ "role": "user", "content": "hi" }] });
        if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        app.post("/api/chat", None, req)
    };
    for (extra, status) in [
        (json!({ "format": "yaml" }), 400),
        (json!({ "format": 3 }), 400),
        // A schema nothing satisfies, or one asking for a remote document.
        (
            json!({ "format": { "type": "integer", "minimum": 5, "maximum": 1 } }),
            400,
        ),
        (
            json!({ "format": { "$ref": "http://127.0.0.1:9/s.json" } }),
            400,
        ),
        (json!({ "think": true }), 400),
        (
            json!({ "tools": [{ "type": "function", "function": { "name": "f" } }] }),
            400,
        ),
        (json!({ "options": { "temperature": "warm" } }), 400),
        (json!({ "options": { "temperature": 9 } }), 400),
        (json!({ "model": "no-such-model" }), 404),
        // As on /v1: the other kind of model is not a chat model (404).
        (json!({ "model": EMBED }), 404),
        (
            json!({ "messages": [{ "role": "tool", "content": "x" }] }),
            400,
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "x", "images": ["aGk="] }] }),
            400,
        ),
        (json!({ "keep_alive": [1] }), 400),
    ] {
        let message = assert_ollama_error(chat(extra.clone()), status);
        assert!(!message.contains('{'), "{extra}: {message}");
    }
    // Tolerated as Ollama does: no tools, unknown options, no content.
    let res = chat(json!({
        "tools": [], "stream": false,
        "options": { "num_predict": 2, "mirostat": 0, "something_new": true },
        "messages": [{ "role": "user" }, { "role": "USER", "content": "hi" }],
    }));
    assert_eq!(res.status(), 200);
    // Not JSON at all, and a route that does not take this method.
    let res = app
        .request("POST", "/api/chat", None)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .expect("send");
    assert_ollama_error(res, 400);
    assert_ollama_error(app.get("/api/chat", None), 405);
    assert_ollama_error(app.post("/api/create", None, json!({})), 404);
    // Bounded names; padded names are not echoed back padded.
    assert_ollama_error(chat(json!({ "model": "m".repeat(300) })), 400);
    let res = body(chat(json!({
        "model": format!("  {CHAT}  "), "stream": false,
        "options": { "num_predict": 2, "stop": vec!["zzz"; 16] },
    })));
    assert_eq!(res["model"], CHAT);
}

#[test]
fn ollama_embeds_unit_vectors_and_the_older_route_still_answers() {
    let app = spawn_with_models(|_| {});
    let res = body(app.post(
        "/api/embed",
        None,
        json!({ "model": EMBED, "input": ["hello", "the sky is blue"] }),
    ));
    let vectors = res["embeddings"].as_array().expect("embeddings");
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let v: Vec<f64> = v
            .as_array()
            .expect("vector")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    assert!(res["prompt_eval_count"].as_u64().is_some_and(|n| n >= 4));
    let short = body(app.post(
        "/api/embed",
        None,
        json!({ "model": EMBED, "input": "hello", "dimensions": 8 }),
    ));
    let v: Vec<f64> = short["embeddings"][0]
        .as_array()
        .expect("vector")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(v.len(), 8);
    assert!((v.iter().map(|x| x * x).sum::<f64>().sqrt() - 1.0).abs() < 1e-4);
    let empty = body(app.post("/api/embed", None, json!({ "model": EMBED })));
    assert_eq!(empty["embeddings"], json!([]));
    assert_ollama_error(
        app.post(
            "/api/embed",
            None,
            json!({ "model": EMBED, "input": "x", "dimensions": 385 }),
        ),
        400,
    );
    assert_ollama_error(
        app.post(
            "/api/embed",
            None,
            json!({ "model": EMBED, "input": "x", "dimensions": 0 }),
        ),
        400,
    );
    assert_ollama_error(
        app.post("/api/embed", None, json!({ "model": CHAT, "input": "x" })),
        404,
    );
    let long = "word ".repeat(2000);
    assert_ollama_error(
        app.post(
            "/api/embed",
            None,
            json!({ "model": EMBED, "input": long, "truncate": false }),
        ),
        400,
    );
    let cut = body(app.post("/api/embed", None, json!({ "model": EMBED, "input": long })));
    assert_eq!(cut["embeddings"][0].as_array().map(Vec::len), Some(384));

    let old = body(app.post(
        "/api/embeddings",
        None,
        json!({ "model": EMBED, "prompt": "hello" }),
    ));
    assert_eq!(old["embedding"].as_array().map(Vec::len), Some(384));
    let none = body(app.post("/api/embeddings", None, json!({ "model": EMBED })));
    assert_eq!(none["embedding"], json!([]));
}

#[test]
fn ollama_routes_take_the_same_credentials_as_v1() {
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    let admin = app.setup_admin();
    let (_, user) = app.create_user(&admin, "ol", "user");
    let (_, guest) = app.create_user(&admin, "og", "guest");
    assert_ollama_error(app.get("/api/tags", None), 401);
    assert_eq!(app.get("/api/version", None).status(), 200);
    assert_eq!(app.get("/api/tags", Some(&user)).status(), 200);
    // HEAD as clients probe: what GET answers, without a body, behind the
    // same gate.
    let head = |path: &str, key: Option<&str>| {
        let res = app.request("HEAD", path, key).send().expect("send");
        let status = res.status().as_u16();
        (status, res.bytes().expect("body").len())
    };
    assert_eq!(head("/", None), (200, 0));
    assert_eq!(head("/api/version", None), (200, 0));
    assert_eq!(head("/api/tags", Some(&user)), (200, 0));
    assert_eq!(head("/api/tags", None).0, 401);
    assert_eq!(head("/v1/models", None).0, 401);
    let res = app.post(
        "/api/generate",
        Some(&user),
        json!({ "model": CHAT, "prompt": "Hi", "stream": false, "options": { "num_predict": 3 } }),
    );
    assert_eq!(res.status(), 200);
    // The usage is the user's, as on /v1.
    let usage = body(app.get("/v1/usage", Some(&user)));
    let mine = usage["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["model"] == CHAT);
    assert!(
        mine.is_some_and(|t| t["requests"].as_i64() >= Some(1)),
        "{usage}"
    );
    // A guest account may chat but not list models; only administrators
    // delete them.
    assert_ollama_error(app.get("/api/tags", Some(&guest)), 403);
    let res = app
        .request("DELETE", "/api/delete", Some(&user))
        .json(&json!({ "model": CHAT }))
        .send()
        .expect("send");
    assert_ollama_error(res, 403);
    let res = app
        .request("DELETE", "/api/delete", Some(&admin))
        .json(&json!({ "model": "no-such-model" }))
        .send()
        .expect("send");
    assert_ollama_error(res, 404);
}

#[test]
fn an_ollama_delete_removes_the_model_and_is_audited() {
    // Its own copy of the chat model: the installed models stay.
    let app = spawn_with_private_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let res = app
        .request("DELETE", "/api/delete", Some(&admin))
        .json(&json!({ "name": format!("{CHAT}:latest") }))
        .send()
        .expect("send");
    assert_eq!(res.status(), 200);
    assert!(res.text().expect("body").is_empty());
    assert_ollama_error(
        app.post("/api/show", Some(&admin), json!({ "model": CHAT })),
        404,
    );
    let audit = body(app.get("/v1/audit?action=model.deleted", Some(&admin)));
    assert!(audit.to_string().contains(CHAT), "{audit}");
}

#[test]
fn ollama_bodies_are_json_whatever_their_type_unless_a_browser_sent_them() {
    let app = spawn_with_models(|_| {});
    let body = json!({ "model": CHAT, "prompt": "Hi", "stream": false,
                       "options": { "num_predict": 2 } })
    .to_string();
    // `curl -d '{…}'` as in Ollama's documentation: a form type.
    let post = |origin: Option<&str>| {
        let mut req = app
            .request("POST", "/api/generate", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().expect("send")
    };
    let res = post(None);
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().expect("json")["done"], true);
    // From a page in a browser (which may send a form type without a
    // preflight): refused, as on /v1.
    let refused = post(Some("http://evil.example"));
    assert_ollama_error(refused, 415);
}
