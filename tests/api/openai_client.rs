//! The official `openai` Python package against the server, with an API
//! key: models, chat (plain and streaming), structured outputs (a pydantic
//! model through `chat.completions.parse`, and `json_object`), embeddings,
//! errors. The test
//! installs nothing: `cargo xtask tools` (run by `cargo xtask test`) puts
//! the pinned package into `~/.cache/offgrid/openai-venv`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_with_models;

const SCRIPT: &str = r#"
import json, sys
from openai import OpenAI, NotFoundError
c = OpenAI(base_url=sys.argv[1] + "/v1", api_key=sys.argv[2])
q = [{"role": "user", "content": "Explain what a CPU does in one sentence."}]
out = {"models": sorted(m.id for m in c.models.list())}
r = c.chat.completions.create(model="smollm2-135m-instruct", messages=q, temperature=0, max_tokens=48)
out["chat"] = r.choices[0].message.content
out["finish"] = r.choices[0].finish_reason
out["total_tokens"] = r.usage.total_tokens
parts, usage = [], None
for ch in c.chat.completions.create(model="smollm2-135m-instruct", messages=q, temperature=0,
                                    max_tokens=48, stream=True, stream_options={"include_usage": True}):
    if ch.choices and ch.choices[0].delta.content:
        parts.append(ch.choices[0].delta.content)
    if ch.usage:
        usage = ch.usage.total_tokens
out["stream"] = "".join(parts)
out["stream_total_tokens"] = usage
from pydantic import BaseModel, Field
class Person(BaseModel):
    name: str = Field(max_length=12)
    age: int = Field(ge=0, le=120)
p = c.chat.completions.parse(model="smollm2-135m-instruct", response_format=Person, seed=7,
                             messages=[{"role": "user", "content": "Invent a person."}], max_tokens=100)
out["parsed"] = p.choices[0].message.parsed.model_dump()
j = c.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=200,
                              response_format={"type": "json_object"},
                              messages=[{"role": "user", "content": "Describe a cat in JSON."}])
out["json_object"] = [j.choices[0].message.content, j.choices[0].finish_reason]
e = c.embeddings.create(model="all-minilm-l6-v2", input=["hello", "world"])
out["embedding_dims"] = [len(d.embedding) for d in e.data]
try:
    c.chat.completions.create(model="no-such-model", messages=q)
except NotFoundError as ex:
    out["not_found"] = ex.status_code
print(json.dumps(out))
"#;

/// The venv's Python, which must exist: one line naming the command that
/// installs it otherwise.
pub(crate) fn venv_python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME");
    let python = cache
        .join("offgrid")
        .join("openai-venv")
        .join("bin")
        .join("python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask tools` (cargo xtask test does)",
        python.display()
    );
    python
}

#[test]
fn the_official_openai_python_client_works_with_an_api_key() {
    let python = venv_python();
    let app = spawn_with_models(|s| {
        s.multi_user_mode = true;
        s.require_auth = true;
    });
    let admin = app.setup_admin();
    let (_, key) = app.create_user(&admin, "py", "user");
    let out = Command::new(python)
        .args(["-c", SCRIPT, &app.base, &key])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["models"],
        serde_json::json!(["all-minilm-l6-v2", "smollm2-135m-instruct"])
    );
    let chat = v["chat"].as_str().expect("chat");
    assert!(chat.contains("CPU"), "{chat}");
    assert_eq!(v["finish"], "stop");
    assert_eq!(v["stream"], v["chat"], "streaming equals plain");
    assert_eq!(v["stream_total_tokens"], v["total_tokens"]);
    // Structured outputs: the client parsed the answer into its model.
    let person = &v["parsed"];
    assert!(
        person["name"]
            .as_str()
            .is_some_and(|n| n.chars().count() <= 12),
        "{person}"
    );
    assert!(
        person["age"]
            .as_i64()
            .is_some_and(|a| (0..=120).contains(&a))
    );
    assert_eq!(v["json_object"][1], "stop", "{}", v["json_object"]);
    let object: Value = serde_json::from_str(v["json_object"][0].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("json_object gave no JSON ({e}): {}", v["json_object"]));
    assert!(object.is_object());
    assert_eq!(v["embedding_dims"], serde_json::json!([384, 384]));
    assert_eq!(v["not_found"], 404);
}
