//! The OpenAI-compatible API over HTTP with the real default models.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{assert_error, body, spawn_with_models};

const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";

fn cpu_question() -> Value {
    json!({
        "model": CHAT,
        "messages": [{"role": "user", "content": "Explain what a CPU does in one sentence."}],
        "temperature": 0,
        "max_tokens": 48,
    })
}

/// Parses an SSE body into its `data:` payloads.
fn sse_events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|block| block.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn models_are_listed_and_described() {
    let app = spawn_with_models(|_| {});
    let list = body(app.get("/v1/models", None));
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&CHAT) && ids.contains(&EMBED), "{ids:?}");
    let one = body(app.get(&format!("/v1/models/{CHAT}"), None));
    assert_eq!(one["object"], "model");
    assert_error(app.get("/v1/models/nope", None), 404, "model_not_found");
}

#[test]
fn chat_completion_plain_and_streaming_give_the_same_text() {
    let app = spawn_with_models(|_| {});
    let res = app.post("/v1/chat/completions", None, cpu_question());
    assert_eq!(res.status(), 200);
    let plain = body(res);
    assert_eq!(plain["object"], "chat.completion");
    assert!(
        plain["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    let content = plain["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned();
    assert_eq!(plain["choices"][0]["message"]["role"], "assistant");
    assert!(
        content.contains("CPU") && content.to_lowercase().contains("computer"),
        "{content}"
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    let usage = &plain["usage"];
    assert!(usage["prompt_tokens"].as_u64().is_some_and(|n| n > 20));
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap_or(0)
                + usage["completion_tokens"].as_u64().unwrap_or(0)
        )
    );

    let mut streaming = cpu_question();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let res = app.post("/v1/chat/completions", None, streaming);
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    let events = sse_events(&res.text().expect("text"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("chunk"))
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, content, "streaming and plain agree");
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("stop")]);
    let last = chunks.last().expect("usage chunk");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"]["completion_tokens"],
        plain["usage"]["completion_tokens"]
    );
}

#[test]
fn text_completions_and_length_limits() {
    let app = spawn_with_models(|_| {});
    let res = app.post(
        "/v1/completions",
        None,
        json!({"model": CHAT, "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}),
    );
    assert_eq!(res.status(), 200);
    let b = body(res);
    assert_eq!(b["object"], "text_completion");
    assert_eq!(b["choices"][0]["finish_reason"], "length");
    assert_eq!(b["usage"]["completion_tokens"], 5);
    assert!(
        b["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}

#[test]
fn embeddings_for_a_string_and_an_array() {
    let app = spawn_with_models(|_| {});
    let one = body(app.post(
        "/v1/embeddings",
        None,
        json!({"model": EMBED, "input": "hello world"}),
    ));
    assert_eq!(
        one["data"][0]["embedding"].as_array().map(Vec::len),
        Some(384)
    );
    let many = body(app.post(
        "/v1/embeddings",
        None,
        json!({"model": EMBED, "input": ["The cat sits on the mat.", "A cat is sitting on a rug.", "Stock markets fell."]}),
    ));
    let v: Vec<Vec<f64>> = many["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .expect("vec")
                .iter()
                .filter_map(Value::as_f64)
                .collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.3);
    assert!(
        many["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert_error(
        app.post("/v1/embeddings", None, json!({"model": CHAT, "input": "x"})),
        404,
        "model_not_found",
    );
}

#[test]
fn bad_requests_get_400s_that_name_the_field() {
    let app = spawn_with_models(|_| {});
    let cases = [
        (json!({"model": CHAT, "messages": []}), "messages"),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "wizard", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "temperature": 5}),
            "temperature",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
            "max_tokens",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}),
            "max_tokens",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "n": 3}),
            "n",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "top_p": 0}),
            "top_p",
        ),
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}],
                   "response_format": {"type": "yaml"}}),
            "response_format",
        ),
        // A schema nothing satisfies is refused before anything runs.
        (
            json!({"model": CHAT, "messages": [{"role": "user", "content": "hi"}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "n",
                       "schema": {"type": "integer", "minimum": 5, "maximum": 1}}}}),
            "response_format",
        ),
    ];
    for (request, field) in cases {
        let res = app.post("/v1/chat/completions", None, request.clone());
        assert_eq!(res.status(), 400, "{request}");
        let b = body(res);
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field} not named in {message:?}");
        assert_eq!(b["error"]["type"], "invalid_request_error");
    }
    let unknown = app.post(
        "/v1/chat/completions",
        None,
        json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_error(unknown, 404, "model_not_found");
    // SmolLM2 was trained for 8192 tokens; one token per word.
    let huge = "word ".repeat(9000);
    let too_long = app.post(
        "/v1/chat/completions",
        None,
        json!({"model": CHAT, "messages": [{"role": "user", "content": huge}]}),
    );
    assert_error(too_long, 400, "context_length_exceeded");
    let broken = app
        .request("POST", "/v1/chat/completions", None)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .expect("send");
    assert_error(broken, 400, "invalid_json");
    // The server is still fine afterwards.
    assert_eq!(
        app.post("/v1/chat/completions", None, cpu_question())
            .status(),
        200
    );
}

#[test]
fn guests_may_chat_but_not_list_models() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    assert_eq!(
        app.post(
            "/v1/chat/completions",
            None,
            json!({
                "model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4
            })
        )
        .status(),
        200
    );
    assert_eq!(app.get("/v1/models", None).status(), 401);
}

#[test]
fn a_users_backlog_does_not_hold_up_another_user_over_http() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, alice) = app.create_user(&admin, "alice", "user");
    let (_, bob) = app.create_user(&admin, "bob", "user");
    let finished = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let request = json!({
        "model": CHAT, "messages": [{"role": "user", "content": "Write a story about a dragon."}],
        "temperature": 0, "max_tokens": 12
    });
    let spawn = |key: String, label: String| {
        let (url, finished, request) = (
            app.url("/v1/chat/completions"),
            finished.clone(),
            request.clone(),
        );
        std::thread::spawn(move || {
            let res = reqwest::blocking::Client::new()
                .post(url)
                .bearer_auth(key)
                .timeout(Duration::from_secs(600))
                .json(&request)
                .send()
                .expect("send");
            assert_eq!(res.status(), 200);
            finished.lock().expect("lock").push(label);
        })
    };
    let mut threads: Vec<_> = (0..8)
        .map(|i| spawn(alice.clone(), format!("alice-{i}")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    threads.push(spawn(bob.clone(), "bob".into()));
    for t in threads {
        t.join().expect("join");
    }
    let order = finished.lock().expect("lock").clone();
    let bob_at = order.iter().position(|l| l == "bob").expect("bob");
    // Alice holds the four slots; Bob takes the first one that frees up,
    // ahead of Alice's four queued requests.
    assert!(bob_at <= 5, "bob finished {bob_at}th: {order:?}");
}

#[test]
fn usage_is_recorded_per_user_and_key() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (alice_id, alice) = app.create_user(&admin, "alice", "user");
    let (_, bob) = app.create_user(&admin, "bob", "user");
    let res = app.post("/v1/chat/completions", Some(&alice), json!({
        "model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0
    }));
    let completion = body(res);
    assert_eq!(
        app.post(
            "/v1/embeddings",
            Some(&alice),
            json!({"model": EMBED, "input": "hello"})
        )
        .status(),
        200
    );
    // Recording happens off the request path: poll briefly.
    let mut mine = Value::Null;
    for _ in 0..50 {
        mine = body(app.get("/v1/usage", Some(&alice)));
        if mine["data"].as_array().is_some_and(|d| d.len() == 2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rows = mine["data"].as_array().expect("data");
    let chat = rows.iter().find(|r| r["model"] == CHAT).expect("chat row");
    assert_eq!(chat["requests"], 1);
    assert_eq!(chat["prompt_tokens"], completion["usage"]["prompt_tokens"]);
    assert_eq!(
        chat["completion_tokens"],
        completion["usage"]["completion_tokens"]
    );
    assert_eq!(chat["user_id"], alice_id.as_str());
    assert_eq!(
        body(app.get("/v1/usage", Some(&bob)))["data"],
        json!([]),
        "bob sees only his own"
    );
    assert_eq!(app.get("/v1/usage?all=true", Some(&bob)).status(), 403);
    let all = body(app.get("/v1/usage?all=true", Some(&admin)));
    assert!(
        all["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|r| r["user_id"] == alice_id.as_str()))
    );
}

#[test]
fn logprobs_follow_openai_semantics() {
    let app = spawn_with_models(|_| {});
    let mut req = cpu_question();
    req["max_tokens"] = json!(6);
    req["logprobs"] = json!(true);
    req["top_logprobs"] = json!(3);
    let b = body(app.post("/v1/chat/completions", None, req.clone()));
    let content = b["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    let entries = b["choices"][0]["logprobs"]["content"]
        .as_array()
        .expect("logprobs.content");
    assert_eq!(
        entries.len() as u64,
        b["usage"]["completion_tokens"].as_u64().expect("tokens")
    );
    let joined: String = entries.iter().filter_map(|e| e["token"].as_str()).collect();
    assert_eq!(joined, content);
    for e in entries {
        let lp = e["logprob"].as_f64().expect("logprob");
        assert!(lp <= 0.0);
        let top = e["top_logprobs"].as_array().expect("top");
        assert_eq!(top.len(), 3);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(top[0]["token"], e["token"]);
        assert!((top[0]["logprob"].as_f64().expect("lp") - lp).abs() < 1e-6);
        assert!(top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64());
    }
    // Without logprobs the field is null.
    assert!(
        body(app.post("/v1/chat/completions", None, cpu_question()))["choices"][0]["logprobs"]
            .is_null()
    );

    // Streaming carries one entry per generated token.
    req["stream"] = json!(true);
    let res = app.post("/v1/chat/completions", None, req);
    let streamed: usize = sse_events(&res.text().expect("text"))
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["logprobs"]["content"]
                .as_array()
                .map(Vec::len)
        })
        .sum();
    assert_eq!(streamed, entries.len());

    // Text completions use the legacy shape.
    let t = body(app.post("/v1/completions", None, json!({
        "model": CHAT, "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0, "logprobs": 2
    })));
    let lp = &t["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().map(Vec::len), Some(4));
    assert_eq!(lp["token_logprobs"].as_array().map(Vec::len), Some(4));
    assert_eq!(lp["top_logprobs"][0].as_object().map(|m| m.len()), Some(2));
    assert_eq!(lp["text_offset"][0], 0);

    // Bad combinations name the field.
    let bad = app.post(
        "/v1/chat/completions",
        None,
        json!({
            "model": CHAT, "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2
        }),
    );
    assert!(
        assert_error(bad, 400, "invalid_value")["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("top_logprobs")
    );
    let bad = app.post(
        "/v1/completions",
        None,
        json!({"model": CHAT, "prompt": "x", "logprobs": 9}),
    );
    assert!(
        assert_error(bad, 400, "invalid_value")["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("logprobs")
    );
}

#[test]
fn echo_with_max_tokens_zero_scores_a_given_text() {
    let app = spawn_with_models(|_| {});
    let score = |text: &str| {
        let b = body(app.post(
            "/v1/completions",
            None,
            json!({
                "model": CHAT, "prompt": text, "max_tokens": 0, "echo": true, "logprobs": 1
            }),
        ));
        assert_eq!(b["choices"][0]["text"], text, "echo returns the prompt");
        assert_eq!(b["usage"]["completion_tokens"], 0);
        let lp = &b["choices"][0]["logprobs"];
        let tokens: String = lp["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(tokens, text, "tokens cover the text");
        let lps = lp["token_logprobs"]
            .as_array()
            .expect("token_logprobs")
            .clone();
        assert!(lps[0].is_null(), "nothing predicts the first token");
        assert!(
            lps[1..]
                .iter()
                .all(|v| v.as_f64().is_some_and(|x| x <= 0.0))
        );
        lps.last().and_then(Value::as_f64).expect("last")
    };
    let paris = score("The capital of France is Paris");
    let london = score("The capital of France is London");
    assert!(
        paris > london,
        "Paris {paris} should score above London {london}"
    );
    // echo is only for text completions.
    let chat = app.post(
        "/v1/chat/completions",
        None,
        json!({
            "model": CHAT, "messages": [{"role": "user", "content": "hi"}], "echo": true
        }),
    );
    assert_eq!(chat.status(), 400);
    let zero = app.post(
        "/v1/completions",
        None,
        json!({"model": CHAT, "prompt": "x", "max_tokens": 0}),
    );
    assert_eq!(zero.status(), 400, "max_tokens 0 needs echo");
}

#[test]
fn echo_streams_the_prompt_first_with_its_scores() {
    let app = spawn_with_models(|_| {});
    let prompt = "The capital of France is";
    let request = |stream: bool| {
        json!({
            "model": CHAT, "prompt": prompt, "max_tokens": 4, "temperature": 0,
            "echo": true, "logprobs": 1, "stream": stream,
        })
    };
    let plain = body(app.post("/v1/completions", None, request(false)));
    let res = app.post("/v1/completions", None, request(true));
    assert_eq!(res.status(), 200);
    let events = sse_events(&res.text().expect("body"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("chunk"))
        .collect();
    // The first chunk is the prompt, scored token by token.
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["text"], prompt);
    let lps = first["logprobs"]["token_logprobs"]
        .as_array()
        .expect("prompt logprobs");
    assert!(lps[0].is_null() && lps[1..].iter().all(|v| v.as_f64().is_some()));
    assert_eq!(
        first["logprobs"]["token_logprobs"],
        plain["choices"][0]["logprobs"]["token_logprobs"]
            .as_array()
            .map(|a| json!(a[..lps.len()]))
            .expect("plain")
    );
    // The whole stream spells what the plain answer says.
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, plain["choices"][0]["text"].as_str().expect("text"));
}

/// A chat that names no model (nor a session or preset that does) is
/// answered by `default_model`, which `/v1/system/config` shows; a default
/// that is not installed is a clear 404 naming it.
#[test]
fn a_chat_without_a_model_uses_the_default_model() {
    let app = spawn_with_models(|_| {});
    let config = body(app.get("/v1/system/config", None));
    assert_eq!(config["default_model"], CHAT);
    let answer = body(app.post(
        "/v1/chat/completions",
        None,
        json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}),
    ));
    assert_eq!(answer["model"], CHAT, "{answer}");

    let app = spawn_with_models(|s| s.default_model = "not-installed".to_owned());
    let err = assert_error(
        app.post(
            "/v1/chat/completions",
            None,
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ),
        404,
        "model_not_found",
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not-installed")),
        "{err}"
    );
}
