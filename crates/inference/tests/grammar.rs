//! Constrained decoding with the real default model: JSON and JSON schema
//! output hold whatever the sampler draws, and hostile schemas are refused
//! or bounded, never a crash.

mod common;

use std::sync::{Arc, OnceLock};

use offgrid_inference::generate::stop_token_ids;
use offgrid_inference::{
    ChatMessage, ChatModel, FinishReason, InferenceError, OutputFormat, SamplingParams, Sequence,
    Step,
};
use serde_json::{Value, json};

fn model() -> Arc<ChatModel> {
    static MODEL: OnceLock<Arc<ChatModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = common::installed("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
            Arc::new(ChatModel::load("smollm2-135m-instruct", &path).expect("load"))
        })
        .clone()
}

/// Generates for `user` with the output held to `format`; the text and why
/// it ended.
fn generate(
    format: Option<&OutputFormat>,
    user: &str,
    temperature: f64,
    seed: u64,
    max_tokens: usize,
) -> (String, FinishReason) {
    let m = model();
    let rendered = m
        .template
        .render(&[ChatMessage::new("user", user)], true)
        .expect("render");
    let prompt = m.tokenizer.encode(&rendered).expect("encode");
    let params = SamplingParams {
        temperature,
        seed,
        max_tokens,
        // The model loops on lists without it (still a valid JSON prefix,
        // ended by the length limit; not what these tests look at).
        repetition_penalty: None,
        ..SamplingParams::default()
    };
    let mut seq =
        Sequence::new(m.model(), prompt, params, stop_token_ids(&m.tokenizer)).expect("sequence");
    if let Some(format) = format {
        seq = seq.constrained(m.constraint(format).expect("constraint"));
    }
    let mut text = String::new();
    loop {
        match seq.step(m.model(), &m.tokenizer).expect("step") {
            Step::Prefill => {}
            Step::Token { text: t, .. } => text.push_str(&t),
            Step::Done { reason, text: t } => {
                text.push_str(&t);
                return (text, reason);
            }
        }
    }
}

#[test]
fn json_output_is_an_object_whatever_the_sampler_draws() {
    // Unconstrained, this model answers in prose: the constraint is what
    // makes it JSON.
    let (free, _) = generate(None, "Describe a cat.", 0.0, 0, 40);
    assert!(serde_json::from_str::<Value>(&free).is_err(), "{free}");
    let mut finished = 0;
    for (temperature, seed) in [(0.7, 1), (0.7, 2), (0.7, 3), (1.0, 4), (1.0, 5), (1.0, 6)] {
        let (text, reason) = generate(
            Some(&OutputFormat::Json),
            "Describe a cat as JSON.",
            temperature,
            seed,
            300,
        );
        assert!(text.starts_with('{'), "{text}");
        // A tiny model may ramble inside a string until the length limit
        // (a JSON prefix then); whenever it ends, the JSON is whole.
        if reason == FinishReason::Length {
            continue;
        }
        assert_eq!(reason, FinishReason::Stop);
        finished += 1;
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}) at temperature {temperature}: {text}"));
        assert!(value.is_object(), "{text}");
    }
    assert!(finished >= 3, "only {finished} of 6 finished");
}

#[test]
fn schema_output_is_valid_against_the_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "color": {"enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3}
        },
        "required": ["name", "age", "color", "tags"],
        "additionalProperties": false
    });
    let format = OutputFormat::JsonSchema(schema);
    for (temperature, seed) in [(0.0, 0), (1.0, 7), (1.5, 8)] {
        let (text, reason) = generate(Some(&format), "Invent a person.", temperature, seed, 200);
        assert_eq!(reason, FinishReason::Stop, "unfinished: {text}");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        let object = value.as_object().expect("object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["age", "color", "name", "tags"], "{text}");
        assert!(
            object["name"]
                .as_str()
                .is_some_and(|n| n.chars().count() <= 12)
        );
        assert!(
            object["age"]
                .as_i64()
                .is_some_and(|a| (0..=120).contains(&a))
        );
        assert!(["red", "green", "blue"].contains(&object["color"].as_str().unwrap_or("")));
        let tags = object["tags"].as_array().expect("tags");
        assert!(tags.len() <= 3);
        assert!(
            tags.iter()
                .all(|t| t.as_str().is_some_and(|t| t.chars().count() <= 8))
        );
    }
}

#[test]
fn a_value_schema_ends_the_output_where_the_value_ends() {
    let format = OutputFormat::JsonSchema(json!({"type": "string", "enum": ["yes", "no"]}));
    let (text, reason) = generate(Some(&format), "Is the sky blue?", 1.0, 3, 50);
    assert_eq!(reason, FinishReason::Stop);
    assert!(text == "\"yes\"" || text == "\"no\"", "{text}");
}

#[test]
fn running_out_of_tokens_says_length() {
    let (text, reason) = generate(
        Some(&OutputFormat::Json),
        "Describe a cat as JSON.",
        0.0,
        0,
        3,
    );
    assert_eq!(reason, FinishReason::Length, "{text}");
}

fn refused(schema: Value) -> String {
    match model().constraint(&OutputFormat::JsonSchema(schema)) {
        Err(InferenceError::Format(message)) => message,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn hostile_schemas_are_refused_or_bounded() {
    // Contradictions and nonsense are errors before anything runs.
    let message = refused(json!({"type": "integer", "minimum": 5, "maximum": 1}));
    assert!(!message.is_empty() && message.len() <= 300, "{message}");
    refused(json!({"type": "no-such-type"}));
    refused(json!({"allOf": [{"type": "string"}, {"type": "integer"}]}));
    // A remote reference is never fetched (this machine is offline, and a
    // server must not make requests for a client).
    refused(json!({"$ref": "http://127.0.0.1:9/schema.json"}));
    refused(json!({"$ref": "#/$defs/missing"}));
    // A self-referencing schema compiles (recursion is a grammar rule),
    // and deep nesting within serde_json's limit neither overflows the
    // stack nor hangs.
    let tree = json!({"$ref": "#/$defs/node", "$defs": {"node": {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "additionalProperties": false
    }}});
    let (text, _) = generate(Some(&OutputFormat::JsonSchema(tree)), "A tree.", 1.0, 5, 60);
    assert!(text.starts_with('{'), "{text}");
    let mut deep = json!({"type": "string"});
    for _ in 0..100 {
        deep = json!({"type": "object", "properties": {"a": deep}, "required": ["a"]});
    }
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            model()
                .constraint(&OutputFormat::JsonSchema(deep))
                .map(|_| ())
        })
        .expect("thread");
    let _compiled_or_refused = handle.join().expect("no stack overflow");
    // A flat chain of references recurses once per link while compiling:
    // long chains are refused by their shape, shorter ones compile on a
    // stack of their own, whatever the caller's stack.
    let chain = |links: usize| {
        let mut defs = serde_json::Map::new();
        for i in 0..links {
            defs.insert(
                format!("a{i}"),
                json!({"$ref": format!("#/$defs/a{}", i + 1)}),
            );
        }
        defs.insert(format!("a{links}"), json!({"type": "integer"}));
        json!({"$ref": "#/$defs/a0", "$defs": defs})
    };
    assert!(refused(chain(1000)).contains("$ref"));
    let handle = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            model()
                .constraint(&OutputFormat::JsonSchema(chain(120)))
                .map(|_| ())
        })
        .expect("thread");
    assert!(handle.join().expect("no stack overflow").is_ok());
    // What llguidance compares pairwise is bounded before it compiles.
    let patterns: serde_json::Map<String, Value> = (0..2000)
        .map(|i| (format!("^a{i}$"), json!(true)))
        .collect();
    assert!(
        refused(json!({"type": "object", "patternProperties": patterns}))
            .contains("patternProperties")
    );
    let options: Vec<Value> = (0..25_000).map(|i| json!({"const": i})).collect();
    refused(json!({"oneOf": options}));
    let values: Vec<Value> = (0..1001).map(|i| json!(i)).collect();
    assert!(refused(json!({"enum": values})).contains("enum"));
    assert!(refused(json!({"description": "x".repeat(70_000)})).contains("bytes"));
    for not_an_object in [json!(true), json!([]), json!("json")] {
        assert!(refused(not_an_object).contains("object"));
    }
    // A client's own grammar options (a whitespace regex) are replaced by
    // the server's: the output stays compact.
    let sneaky = OutputFormat::JsonSchema(json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "x-guidance": {"whitespace_flexible": true, "whitespace_pattern": "[ \\n]{0,9999}"}
    }));
    let (text, reason) = generate(Some(&sneaky), "Give a.", 0.0, 0, 40);
    assert_eq!(reason, FinishReason::Stop, "{text}");
    assert!(text.starts_with("{\"a\": "), "{text}");
}
