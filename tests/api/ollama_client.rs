//! The official `ollama` Python package (from PyPI, pinned by `cargo
//! xtask tools`) against a multi-user server, with an API key in
//! `OLLAMA_API_KEY` as the client sends it: list, show, ps, generate
//! (streamed and not), chat with options, `format="json"` and a JSON
//! schema, embed with two inputs, and an unknown model as `ResponseError`
//! 404.

use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_with_models;
use crate::openai_client::venv_python;

const SCRIPT: &str = r#"
import json, sys
import ollama
c = ollama.Client(host=sys.argv[1])
out = {}
out["list"] = sorted(m.model for m in c.list().models)
s = c.show("smollm2-135m-instruct")
out["show"] = {"family": s.details.family, "arch": s.modelinfo["general.architecture"],
               "capabilities": s.capabilities}
opts = {"temperature": 0, "num_predict": 16, "seed": 3}
g = c.generate(model="smollm2-135m-instruct", prompt="Name a primary colour.", options=opts)
out["generate"] = g.response
out["generate_done"] = [g.done, g.done_reason, g.eval_count]
out["generate_stream"] = "".join(p.response for p in c.generate(
    model="smollm2-135m-instruct", prompt="Name a primary colour.", options=opts, stream=True))
q = [{"role": "system", "content": "You are brief."},
     {"role": "user", "content": "What does a CPU do?"}]
r = c.chat(model="smollm2-135m-instruct:latest", messages=q, options=opts)
out["chat"] = r.message.content
out["chat_role"] = r.message.role
parts = [p for p in c.chat(model="smollm2-135m-instruct", messages=q, options=opts, stream=True)]
out["chat_stream"] = "".join(p.message.content for p in parts)
out["chat_last"] = [parts[-1].done, parts[-1].done_reason, parts[-1].eval_count,
                    parts[-1].prompt_eval_count > 0, parts[-1].total_duration > 0]
j = c.generate(model="smollm2-135m-instruct", prompt="Describe a cat in JSON.", format="json",
               options={"temperature": 0, "num_predict": 200})
out["json"] = [j.response, j.done_reason]
person = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 12},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}}}
p = c.chat(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Invent a person."}],
           format=person, options={"temperature": 1.0, "seed": 7, "num_predict": 100})
out["schema"] = [p.message.content, p.done_reason]
out["ps"] = [m.model for m in c.ps().models]
e = c.embed(model="all-minilm-l6-v2", input=["hello", "world"])
out["embed"] = [len(v) for v in e.embeddings]
try:
    c.chat(model="no-such-model", messages=q)
except ollama.ResponseError as ex:
    out["not_found"] = ex.status_code
try:
    ollama.Client(host=sys.argv[1], headers={"Authorization": "Bearer wrong"}).list()
except ollama.ResponseError as ex:
    out["wrong_key"] = ex.status_code
print(json.dumps(out))
"#;

#[test]
fn the_official_ollama_python_client_works_with_an_api_key() {
    let python = venv_python();
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "olpy", "user");
    let out = Command::new(python)
        .args(["-c", SCRIPT, &app.base])
        .env("OLLAMA_API_KEY", &key)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["list"],
        serde_json::json!(["all-minilm-l6-v2:latest", "smollm2-135m-instruct:latest"])
    );
    assert_eq!(v["show"]["family"], "llama");
    assert_eq!(v["show"]["arch"], "llama");
    assert_eq!(v["show"]["capabilities"], serde_json::json!(["completion"]));
    let generated = v["generate"].as_str().unwrap_or_default();
    assert!(!generated.is_empty());
    assert_eq!(
        v["generate_stream"], v["generate"],
        "streaming equals plain"
    );
    assert_eq!(v["generate_done"][0], true);
    assert!(
        v["generate_done"][2]
            .as_u64()
            .is_some_and(|n| (1..=16).contains(&n))
    );
    let chat = v["chat"].as_str().unwrap_or_default();
    assert!(!chat.is_empty());
    assert_eq!(v["chat_role"], "assistant");
    assert_eq!(v["chat_stream"], v["chat"], "streaming equals plain");
    assert_eq!(v["chat_last"][0], true);
    assert_eq!(v["chat_last"][3], true);
    assert_eq!(v["chat_last"][4], true);
    // Constrained decoding: JSON, and JSON valid against the schema.
    assert_eq!(v["json"][1], "stop", "{}", v["json"]);
    let json: Value = serde_json::from_str(v["json"][0].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("format=json gave no JSON ({e}): {}", v["json"]));
    assert!(json.is_object(), "{json}");
    assert_eq!(v["schema"][1], "stop", "{}", v["schema"]);
    let person: Value = serde_json::from_str(v["schema"][0].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the schema gave no JSON ({e}): {}", v["schema"]));
    let fields = person.as_object().expect("an object");
    assert_eq!(fields.len(), 2, "{person}");
    assert!(
        fields["name"]
            .as_str()
            .is_some_and(|n| n.chars().count() <= 12)
    );
    assert!(
        fields["age"]
            .as_i64()
            .is_some_and(|a| (0..=120).contains(&a))
    );
    assert_eq!(
        v["ps"],
        serde_json::json!(["smollm2-135m-instruct:latest"]),
        "the chat model is loaded; the embedding model was not yet"
    );
    assert_eq!(v["embed"], serde_json::json!([384, 384]));
    assert_eq!(v["not_found"], 404);
    assert_eq!(v["wrong_key"], 401);
}
