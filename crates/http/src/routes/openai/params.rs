//! Checking what a completion or embedding request asks for: each value in
//! range, or a 400 naming its field; then the engine's sampling parameters
//! and messages.

use serde::de::DeserializeOwned;
use serde_json::Value;

use offgrid_inference::SamplingParams;

use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::wire::{CompletionOptions, Content, EmbeddingInput, PromptField, Stop};

/// Default completion length when the client gives none.
pub(super) const DEFAULT_MAX_TOKENS: usize = 512;
/// Inputs one embedding request may hold.
pub(crate) const MAX_EMBEDDING_INPUTS: usize = 2048;

/// A chat completion or a text completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Text,
}

/// 400 `invalid_value` for `param`.
pub(crate) fn invalid(param: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidValue, format!("{param}: {message}"))
}

/// Deserializes a JSON body once, naming the field of the first error.
pub(crate) fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    // serde would fill a struct from an array's elements in field order.
    if !body.is_object() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "invalid request body: expected a JSON object",
        ));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request(
                ErrorCode::InvalidRequest,
                format!("invalid request body: {inner}"),
            )
        } else {
            invalid(&path, inner)
        }
    })
}

/// Log-probabilities requested, as the number of alternatives per token:
/// chat uses `logprobs: true` + `top_logprobs` (0–20), text completions
/// `logprobs: N` (0–5).
fn logprobs(o: &CompletionOptions<'_>, kind: Kind) -> Result<Option<usize>, ApiError> {
    if o.echo == Some(true) && kind == Kind::Chat {
        return Err(invalid("echo", "is only available on /v1/completions"));
    }
    match kind {
        Kind::Chat => {
            let on = match o.logprobs {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::Bool(true)) => true,
                Some(other) => {
                    return Err(invalid(
                        "logprobs",
                        format!("must be true or false, got {other}"),
                    ));
                }
            };
            match (on, o.top_logprobs) {
                (false, Some(_)) => Err(invalid("top_logprobs", "needs logprobs: true")),
                (false, None) => Ok(None),
                (true, None) => Ok(Some(0)),
                (true, Some(k)) if (0..=20).contains(&k) => Ok(Some(k as usize)),
                (true, Some(k)) => Err(invalid(
                    "top_logprobs",
                    format!("must be between 0 and 20, got {k}"),
                )),
            }
        }
        Kind::Text => match o.logprobs {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(k) if k <= 5 => Ok(Some(k as usize)),
                _ => Err(invalid(
                    "logprobs",
                    format!("must be an integer from 0 to 5, got {n}"),
                )),
            },
            Some(other) => Err(invalid(
                "logprobs",
                format!("must be an integer from 0 to 5, got {other}"),
            )),
        },
    }
}

/// The engine's sampling parameters for a request, and the `max_tokens`
/// the client gave explicitly (more than the context leaves is then an
/// error rather than lowered).
pub(super) fn sampling(
    o: &CompletionOptions<'_>,
    kind: Kind,
) -> Result<(SamplingParams, Option<usize>), ApiError> {
    if let Some(n) = o.n.filter(|n| *n != 1) {
        return Err(invalid("n", format!("only n=1 is supported, got {n}")));
    }
    let logprobs = logprobs(o, kind)?;
    let echo = o.echo == Some(true);
    let max = match o.max_completion_tokens.or(o.max_tokens) {
        None => None,
        Some(m) if (1..=1_000_000).contains(&m) => Some(m as usize),
        // Scoring a given text: echo it, generate nothing.
        Some(0) if echo => Some(0),
        Some(m) => {
            let field = if o.max_completion_tokens.is_some() {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            return Err(invalid(
                field,
                format!("must be between 1 and 1000000, got {m}"),
            ));
        }
    };
    let temperature = o.temperature.unwrap_or(0.7);
    if !(0.0..=2.0).contains(&temperature) || temperature.is_nan() {
        return Err(invalid(
            "temperature",
            format!("must be between 0 and 2, got {temperature}"),
        ));
    }
    if let Some(p) = o.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return Err(invalid("top_p", format!("must be in (0, 1], got {p}")));
    }
    let top_k = match o.top_k {
        None | Some(0) => None,
        Some(k) if (1..=100_000).contains(&k) => Some(k as usize),
        Some(k) => {
            return Err(invalid(
                "top_k",
                format!("must be between 0 and 100000, got {k}"),
            ));
        }
    };
    let repetition_penalty = match o.repetition_penalty {
        None => None,
        Some(r) if r > 0.0 && r <= 10.0 => Some(r as f32),
        Some(r) => {
            return Err(invalid(
                "repetition_penalty",
                format!("must be in (0, 10], got {r}"),
            ));
        }
    };
    let stop = match o.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) if v.len() <= 4 => v.clone(),
        Some(Stop::Many(v)) => {
            return Err(invalid(
                "stop",
                format!("at most 4 sequences, got {}", v.len()),
            ));
        }
    };
    let seed = match o.seed {
        None => rand_seed(),
        Some(s) => s as u64,
    };
    Ok((
        SamplingParams {
            temperature,
            top_p: o.top_p,
            top_k,
            repetition_penalty,
            seed,
            max_tokens: max.unwrap_or(DEFAULT_MAX_TOKENS),
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            logprobs,
            score_prompt: echo && logprobs.is_some(),
        },
        max,
    ))
}

fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// The request's messages as the engine takes them: roles checked
/// (`developer` is `system`), text parts joined.
pub(super) fn messages(
    input: Vec<crate::wire::ChatMessage>,
) -> Result<Vec<offgrid_inference::ChatMessage>, ApiError> {
    if input.is_empty() {
        return Err(invalid("messages", "must contain at least one message"));
    }
    input
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(invalid(
                        &format!("messages[{i}].role"),
                        format!("must be system, user or assistant, got {other:?}"),
                    ));
                }
            };
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(t)) => t,
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.into_iter().enumerate() {
                        if p.kind != "text" {
                            return Err(invalid(
                                &format!("messages[{i}].content[{j}].type"),
                                format!("only text parts are supported, got {:?}", p.kind),
                            ));
                        }
                        text.push_str(&p.text.unwrap_or_default());
                    }
                    text
                }
            };
            Ok(offgrid_inference::ChatMessage::new(role, &content))
        })
        .collect()
}

/// The one prompt of a text completion.
pub(super) fn prompt(field: PromptField) -> Result<String, ApiError> {
    match field {
        PromptField::One(p) => Ok(p),
        PromptField::Many(mut v) if v.len() == 1 => Ok(v.remove(0)),
        PromptField::Many(v) => Err(invalid(
            "prompt",
            format!("only one prompt per request is supported, got {}", v.len()),
        )),
    }
}

/// An embedding request's inputs (1 to 2,048).
pub(super) fn embedding_inputs(input: EmbeddingInput) -> Result<Vec<String>, ApiError> {
    let inputs = match input {
        EmbeddingInput::One(s) => vec![s],
        EmbeddingInput::Many(v) => v,
    };
    if inputs.is_empty() || inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(invalid("input", "must hold 1 to 2048 strings"));
    }
    Ok(inputs)
}

/// Whether vectors go back as base64 (`encoding_format`).
pub(super) fn as_base64(encoding_format: Option<&str>) -> Result<bool, ApiError> {
    match encoding_format {
        None | Some("float") => Ok(false),
        Some("base64") => Ok(true),
        Some(f) => Err(invalid(
            "encoding_format",
            format!("must be \"float\" or \"base64\", got {f:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::{ChatCompletionRequest, CompletionRequest};

    fn chat(extra: Value) -> ChatCompletionRequest {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        parse(body).expect("parses")
    }

    fn text(extra: Value) -> CompletionRequest {
        let mut body = json!({"model": "m", "prompt": "hi"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        parse(body).expect("parses")
    }

    fn refused(r: Result<(SamplingParams, Option<usize>), ApiError>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => {
                assert_eq!(e.status.as_u16(), 400);
                e.message
            }
        }
    }

    #[test]
    fn defaults_when_nothing_is_asked() {
        let (p, max) = sampling(&chat(json!({})).options(), Kind::Chat).expect("ok");
        assert_eq!(max, None);
        assert_eq!(p.max_tokens, DEFAULT_MAX_TOKENS);
        assert!((p.temperature - 0.7).abs() < 1e-9);
        assert_eq!(p.top_k, None);
        assert!(p.stop.is_empty());
        assert_eq!(p.logprobs, None);
    }

    #[test]
    fn each_value_is_checked_at_its_limits() {
        for (extra, field) in [
            (json!({"temperature": 2.01}), "temperature"),
            (json!({"temperature": -0.01}), "temperature"),
            (json!({"top_p": 0.0}), "top_p"),
            (json!({"top_p": 1.01}), "top_p"),
            (json!({"top_k": 100_001}), "top_k"),
            (json!({"top_k": -1}), "top_k"),
            (json!({"repetition_penalty": 0.0}), "repetition_penalty"),
            (json!({"repetition_penalty": 10.5}), "repetition_penalty"),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"max_tokens": 1_000_001}), "max_tokens"),
            (
                json!({"max_completion_tokens": -5}),
                "max_completion_tokens",
            ),
            (json!({"n": 2}), "n"),
            (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
            (json!({"logprobs": 3}), "logprobs"),
            (json!({"top_logprobs": 2}), "top_logprobs"),
            (
                json!({"logprobs": true, "top_logprobs": 21}),
                "top_logprobs",
            ),
            (json!({"echo": true}), "echo"),
        ] {
            let message = refused(sampling(&chat(extra.clone()).options(), Kind::Chat));
            assert!(message.starts_with(field), "{extra}: {message}");
        }
        // And the edges that are allowed.
        for extra in [
            json!({"temperature": 0.0}),
            json!({"temperature": 2.0}),
            json!({"top_p": 1.0}),
            json!({"top_k": 0}),
            json!({"top_k": 100_000}),
            json!({"repetition_penalty": 10.0}),
            json!({"max_tokens": 1_000_000}),
            json!({"stop": ["a", "b", "c", "d"]}),
            json!({"logprobs": true, "top_logprobs": 20}),
            json!({"seed": i64::MIN}),
        ] {
            assert!(
                sampling(&chat(extra.clone()).options(), Kind::Chat).is_ok(),
                "{extra}"
            );
        }
    }

    #[test]
    fn text_completions_take_a_count_of_logprobs_and_echo() {
        let (p, _) = sampling(&text(json!({"logprobs": 5})).options(), Kind::Text).expect("5");
        assert_eq!(p.logprobs, Some(5));
        let m = refused(sampling(
            &text(json!({"logprobs": 6})).options(),
            Kind::Text,
        ));
        assert!(m.starts_with("logprobs"), "{m}");
        let m = refused(sampling(
            &text(json!({"logprobs": true})).options(),
            Kind::Text,
        ));
        assert!(m.starts_with("logprobs"), "{m}");
        // Scoring a text: echo, logprobs and no new tokens.
        let (p, max) = sampling(
            &text(json!({"echo": true, "logprobs": 0, "max_tokens": 0})).options(),
            Kind::Text,
        )
        .expect("scoring");
        assert_eq!(max, Some(0));
        assert!(p.score_prompt);
    }

    #[test]
    fn max_completion_tokens_wins_and_empty_stops_are_dropped() {
        let (p, max) = sampling(
            &chat(json!({"max_tokens": 9, "max_completion_tokens": 3, "stop": ["", "x"]}))
                .options(),
            Kind::Chat,
        )
        .expect("ok");
        assert_eq!((p.max_tokens, max), (3, Some(3)));
        assert_eq!(p.stop, ["x"]);
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let e = parse::<ChatCompletionRequest>(
            json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
        )
        .expect_err("refused");
        assert!(
            e.message.starts_with("messages[0].content"),
            "{}",
            e.message
        );
        let e = parse::<ChatCompletionRequest>(json!([1, 2])).expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn messages_roles_and_parts() {
        let req = chat(json!({"messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ]}));
        let m = messages(req.messages).expect("ok");
        assert_eq!(m[0].role, "system");
        assert_eq!(m[1].content, "ab");
        let bad = chat(json!({"messages": [{"role": "tool", "content": "x"}]}));
        let e = messages(bad.messages).expect_err("refused");
        assert!(e.message.starts_with("messages[0].role"), "{}", e.message);
        let image =
            chat(json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}));
        let e = messages(image.messages).expect_err("refused");
        assert!(
            e.message.starts_with("messages[0].content[0].type"),
            "{}",
            e.message
        );
        assert!(messages(Vec::new()).is_err());
    }

    #[test]
    fn prompts_and_embedding_inputs_are_bounded() {
        assert_eq!(
            prompt(PromptField::Many(vec!["a".into()])).ok(),
            Some("a".into())
        );
        assert!(prompt(PromptField::Many(vec!["a".into(), "b".into()])).is_err());
        assert!(embedding_inputs(EmbeddingInput::Many(Vec::new())).is_err());
        let max = vec![String::new(); MAX_EMBEDDING_INPUTS];
        assert!(embedding_inputs(EmbeddingInput::Many(max.clone())).is_ok());
        let over = vec![String::new(); MAX_EMBEDDING_INPUTS + 1];
        assert!(embedding_inputs(EmbeddingInput::Many(over)).is_err());
        assert_eq!(as_base64(Some("base64")).ok(), Some(true));
        assert_eq!(as_base64(None).ok(), Some(false));
        assert!(as_base64(Some("binary")).is_err());
    }
}
