//! Chat completions in a session and with a preset, with the real default
//! model: the history comes first and the exchange is saved (plain,
//! streamed, and cut off), a long history is trimmed rather than refused,
//! presets fill in what the request leaves out, and a session the caller
//! may not write is refused with nothing saved.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const CHAT: &str = "smollm2-135m-instruct";

fn chat(app: &TestApp, auth: Option<&str>, body: Value) -> reqwest::blocking::Response {
    app.post("/v1/chat/completions", auth, body)
}

fn new_session(app: &TestApp, auth: Option<&str>, body: Value) -> String {
    let res = app.post("/v1/sessions", auth, body);
    assert_eq!(res.status(), 201);
    self::body(res)["id"].as_str().expect("id").to_owned()
}

fn messages(app: &TestApp, auth: Option<&str>, id: &str) -> Vec<Value> {
    body(app.get(&format!("/v1/sessions/{id}"), auth))["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

#[test]
fn a_session_chat_uses_and_extends_the_history() {
    let app = spawn_with_models(|_| {});
    // Single-user mode: the session belongs to `system`, no login.
    let id = new_session(&app, None, json!({"model": CHAT}));
    let first = body(chat(
        &app,
        None,
        json!({"session_id": id, "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "user", "content": "My name is Zorblax. Say hello."}]}),
    ));
    assert_eq!(
        first["model"], CHAT,
        "the session's model when none is given"
    );
    assert_eq!(first["usage"]["truncated_messages"], 0, "{first}");
    let answer = first["choices"][0]["message"]["content"]
        .as_str()
        .expect("answer")
        .to_owned();
    let stored = messages(&app, None, &id);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0]["role"], "user");
    assert_eq!(stored[0]["content"], "My name is Zorblax. Say hello.");
    assert_eq!(stored[1]["role"], "assistant");
    assert_eq!(stored[1]["content"], answer.as_str());
    assert_eq!(stored[1]["model"], CHAT);
    assert_eq!(stored[1]["interrupted"], false);
    assert_eq!(
        stored[1]["usage"]["completion_tokens"],
        first["usage"]["completion_tokens"]
    );

    // The second turn's prompt holds the first exchange.
    let second = body(chat(
        &app,
        None,
        json!({"session_id": id, "temperature": 0, "max_tokens": 4,
            "messages": [{"role": "user", "content": "What is my name?"}]}),
    ));
    let alone = body(chat(
        &app,
        None,
        json!({"model": CHAT, "temperature": 0, "max_tokens": 4,
            "messages": [{"role": "user", "content": "What is my name?"}]}),
    ));
    let with_history = second["usage"]["prompt_tokens"].as_u64().expect("tokens");
    let without = alone["usage"]["prompt_tokens"].as_u64().expect("tokens");
    let first_turn = first["usage"]["total_tokens"].as_u64().expect("tokens");
    assert!(
        with_history >= without + first_turn - 20,
        "{with_history} vs {without} + {first_turn}"
    );
    assert!(
        alone["usage"].get("truncated_messages").is_none(),
        "{alone}"
    );
    assert_eq!(messages(&app, None, &id).len(), 4);

    // Streamed, the exchange is saved before `[DONE]` reaches the client.
    let streamed = chat(
        &app,
        None,
        json!({"session_id": id, "temperature": 0, "max_tokens": 6, "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Thanks!"}]}),
    )
    .text()
    .expect("stream");
    assert!(streamed.contains("data: [DONE]"), "{streamed}");
    assert!(streamed.contains("\"truncated_messages\":0"), "{streamed}");
    let stored = messages(&app, None, &id);
    assert_eq!(stored.len(), 6);
    assert_eq!(stored[4]["content"], "Thanks!");
    assert_eq!(stored[5]["interrupted"], false);
    assert!(stored[5]["content"].as_str().is_some_and(|t| !t.is_empty()));
}

#[test]
fn a_stream_cut_off_saves_what_was_generated_as_interrupted() {
    let app = spawn_with_models(|_| {});
    let id = new_session(&app, None, json!({"model": CHAT}));
    let mut res = chat(
        &app,
        None,
        json!({"session_id": id, "stream": true, "max_tokens": 2000, "temperature": 0.9,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}),
    );
    assert_eq!(res.status(), 200);
    // Read a few chunks of the answer, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.iter().filter(|&&b| b == b'\n').count() < 20 {
        let n = res.read(&mut buf).expect("read");
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(res);
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = messages(&app, None, &id);
        if stored.len() == 2 || Instant::now() > deadline {
            break stored;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[1]["interrupted"], true);
    // With its token counts when the engine noticed the hang-up before the
    // stream was dropped, without when the stream went first.
    let usage = &stored[1]["usage"];
    assert!(
        usage.is_null() || usage["completion_tokens"].as_u64() > Some(0),
        "{usage}"
    );
    assert!(
        stored[1]["content"].as_str().is_some_and(|t| !t.is_empty()),
        "{stored:?}"
    );
}

#[test]
fn a_history_longer_than_the_context_is_trimmed_from_the_oldest_turn() {
    let app = spawn_with_models(|s| s.context_length = 512);
    let id = new_session(&app, None, json!({"model": CHAT}));
    // Ten turns of about 120 tokens each: far more than 512.
    let filler = "The quick brown fox jumps over the lazy dog. ".repeat(12);
    let mut history = Vec::new();
    for turn in 0..10 {
        history.push(json!({"role": "user", "content": format!("Question {turn}: {filler}")}));
        history.push(json!({"role": "assistant", "content": format!("Answer {turn}: {filler}")}));
    }
    for m in &history {
        let res = app.post(&format!("/v1/sessions/{id}/messages"), None, m.clone());
        assert_eq!(res.status(), 201);
    }
    let res = body(chat(
        &app,
        None,
        json!({"session_id": id, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Summarise."}]}),
    ));
    let usage = &res["usage"];
    let truncated = usage["truncated_messages"].as_u64().expect("reported");
    assert!(
        truncated > 0 && truncated < 20 && truncated.is_multiple_of(2),
        "whole turns: {usage}"
    );
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt");
    assert!(prompt + 8 <= 512, "{usage}");
    // Only as much was left out as needed: one more turn (two messages of
    // at least 12 ten-token sentences) would not fit.
    assert!(prompt + 8 + 240 > 512, "{usage}");
    // Nothing is lost from the session itself.
    assert_eq!(messages(&app, None, &id).len(), 22);

    // Without a session, a prompt over the context is still an error.
    let long = format!("{filler}{filler}{filler}{filler}{filler}");
    assert_error(
        chat(
            &app,
            None,
            json!({"model": CHAT, "messages": [{"role": "user", "content": long}]}),
        ),
        400,
        "context_length_exceeded",
    );
}

#[test]
fn a_preset_comes_first_and_the_request_overrides_it() {
    let app = spawn_with_models(|_| {});
    let long_prompt = "You are a meticulous assistant who answers in full sentences, \
        checks every fact twice, never guesses, and says so when unsure. "
        .repeat(3);
    let preset = body(app.post(
        "/v1/presets",
        None,
        json!({"name": "Careful", "system_prompt": long_prompt, "model": CHAT,
            "max_tokens": 3, "temperature": 0}),
    ));
    let preset_id = preset["id"].as_str().expect("id");
    let question = json!([{"role": "user", "content": "Write a long story about a dragon."}]);
    // The preset's model and max_tokens apply.
    let with = body(chat(
        &app,
        None,
        json!({"preset_id": preset_id, "messages": question}),
    ));
    assert_eq!(with["model"], CHAT);
    assert!(
        with["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n <= 3),
        "{with}"
    );
    // The preset's system prompt replaces the template's default one.
    let without = body(chat(
        &app,
        None,
        json!({"model": CHAT, "max_tokens": 3, "messages": question}),
    ));
    assert!(
        with["usage"]["prompt_tokens"].as_u64() > without["usage"]["prompt_tokens"].as_u64(),
        "{with} {without}"
    );
    // The request's own value wins.
    let longer = body(chat(
        &app,
        None,
        json!({"preset_id": preset_id, "max_tokens": 9, "messages": question}),
    ));
    assert_eq!(longer["usage"]["completion_tokens"], 9, "{longer}");
    // No model in the request, session or preset: the server's
    // `default_model` answers.
    let fallback = body(chat(
        &app,
        None,
        json!({"messages": question, "max_tokens": 2}),
    ));
    assert_eq!(fallback["model"], CHAT, "{fallback}");
    assert_error(
        chat(
            &app,
            None,
            json!({"preset_id": "no-such-preset", "messages": question}),
        ),
        404,
        "not_found",
    );
}

#[test]
fn chatting_into_a_session_needs_write_access_and_saves_nothing_otherwise() {
    let app = spawn_with_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let (bob_id, bob) = app.create_user(&admin, "bob", "user");
    let (vic_id, vic) = app.create_user(&admin, "vic", "viewer");
    let (_, gus) = app.create_user(&admin, "gus", "guest");
    let id = new_session(&app, Some(&ann), json!({"model": CHAT}));
    let private_preset = body(app.post(
        "/v1/presets",
        Some(&ann),
        json!({"name": "Mine", "system_prompt": "Secret instructions."}),
    ))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ask = |auth: Option<&str>, extra: Value| {
        let mut req = json!({"model": CHAT, "max_tokens": 2, "temperature": 0,
            "messages": [{"role": "user", "content": "intruder"}]});
        for (k, v) in extra.as_object().expect("object") {
            req[k] = v.clone();
        }
        chat(&app, auth, req).status().as_u16()
    };
    let session = json!({"session_id": id});
    assert_eq!(ask(Some(&bob), session.clone()), 404, "not shared");
    assert_eq!(ask(Some(&vic), session.clone()), 404, "viewer, not shared");
    assert_eq!(ask(Some(&gus), session.clone()), 403, "guest account");
    assert_eq!(ask(None, session.clone()), 403, "anonymous guest");
    assert_eq!(
        ask(Some(&bob), json!({"preset_id": private_preset})),
        404,
        "someone else's private preset"
    );
    let share = |user: &str, level: &str| {
        let res = app.post(
            &format!("/v1/sessions/{id}/shares"),
            Some(&ann),
            json!({"user_id": user, "permission": level}),
        );
        assert!(res.status().is_success());
    };
    share(&bob_id, "read");
    assert_eq!(ask(Some(&bob), session.clone()), 403, "read share");
    share(&vic_id, "write");
    assert_eq!(ask(Some(&vic), session.clone()), 403, "a viewer only reads");
    assert!(messages(&app, Some(&ann), &id).is_empty(), "nothing saved");
    // What one chat may add to a session is bounded like the messages
    // route (64 with the answer), refused before any work.
    let many: Vec<Value> = (0..64)
        .map(|_| json!({"role": "user", "content": "x"}))
        .collect();
    let res = chat(
        &app,
        Some(&ann),
        json!({"model": CHAT, "session_id": id, "max_tokens": 1, "messages": many}),
    );
    assert_error(res, 422, "invalid_value");
    assert!(messages(&app, Some(&ann), &id).is_empty(), "nothing saved");
    share(&bob_id, "write");
    assert_eq!(ask(Some(&bob), session.clone()), 200, "write share");
    assert_eq!(ask(Some(&admin), session.clone()), 200, "an admin");
    let stored = messages(&app, Some(&ann), &id);
    assert_eq!(stored.len(), 4);
    // Revoked: refused on the next request.
    let res = app.delete(&format!("/v1/sessions/{id}/shares/{bob_id}"), Some(&ann));
    assert_eq!(res.status(), 204);
    assert_eq!(ask(Some(&bob), session), 404, "revoked");
    assert_eq!(messages(&app, Some(&ann), &id).len(), 4);
}

#[test]
fn with_admin_can_read_chats_off_an_admin_cannot_chat_into_others_sessions() {
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.admin_can_read_chats = false;
    });
    let admin = app.setup_admin();
    let (_, ann) = app.create_user(&admin, "ann", "user");
    let id = new_session(&app, Some(&ann), json!({"model": CHAT}));
    let res = chat(
        &app,
        Some(&admin),
        json!({"session_id": id, "max_tokens": 2,
            "messages": [{"role": "user", "content": "let me read"}]}),
    );
    assert_eq!(res.status(), 403);
    assert!(messages(&app, Some(&ann), &id).is_empty());
}
