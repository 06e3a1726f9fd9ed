//! Ollama's `options` onto our sampling: `temperature`, `top_p`, `top_k`,
//! `seed`, `num_predict`, `stop` and `repeat_penalty` are used, with
//! Ollama's defaults (temperature 0.8, top_k 40, top_p 0.9) where the
//! request gives none. Ollama's other options (`num_ctx`, `mirostat`, …)
//! are accepted when their type is right and not applied; unknown keys
//! are ignored with a log line, as Ollama does. A known key of the wrong
//! type is a 400 naming it.

use offgrid_inference::OutputFormat;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::routes::openai::invalid;

/// Ollama's default temperature.
const TEMPERATURE: f64 = 0.8;
/// Ollama's default top-k.
const TOP_K: i64 = 40;
/// Ollama's default nucleus mass.
const TOP_P: f64 = 0.9;
/// Stop sequences at most (editor plugins send several).
pub(super) const MAX_STOPS: usize = 16;
/// Bytes of one stop sequence at most.
const MAX_STOP_BYTES: usize = 256;
/// Longest completion asked for (a larger `num_predict` is this; the
/// context bounds it further).
const MAX_PREDICT: i64 = 1_000_000;

/// The sampling a request asked for, owned (a
/// [`crate::wire::CompletionOptions`] borrows from it).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: i64,
    pub seed: Option<i64>,
    pub max_tokens: Option<i64>,
    pub stop: Option<Vec<String>>,
    pub repeat_penalty: Option<f64>,
    /// `format`, set by the route (it is not an option).
    pub format: Option<OutputFormat>,
}

/// What type a known option has.
#[derive(Clone, Copy)]
enum Kind {
    Float,
    Integer,
    Boolean,
    Strings,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Float => "float",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Strings => "array of strings",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Float | Kind::Integer => v.is_number(),
            Kind::Boolean => v.is_boolean(),
            Kind::Strings => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        }
    }
}

/// Every option Ollama knows, with its type (`api/types.go`, and the keys
/// the Python client still sends).
fn known(key: &str) -> Option<Kind> {
    Some(match key {
        "temperature" | "top_p" | "min_p" | "typical_p" | "repeat_penalty" | "presence_penalty"
        | "frequency_penalty" | "mirostat_tau" | "mirostat_eta" | "tfs_z" => Kind::Float,
        "seed" | "num_predict" | "top_k" | "num_ctx" | "num_batch" | "num_gpu" | "main_gpu"
        | "num_thread" | "num_keep" | "repeat_last_n" | "mirostat" | "draft_num_predict" => {
            Kind::Integer
        }
        "numa" | "low_vram" | "f16_kv" | "logits_all" | "vocab_only" | "use_mmap" | "use_mlock"
        | "embedding_only" | "penalize_newline" => Kind::Boolean,
        "stop" => Kind::Strings,
        _ => return None,
    })
}

/// Reads `options` (absent: Ollama's defaults).
pub(super) fn sampling(options: Option<&Map<String, Value>>) -> Result<Sampling, ApiError> {
    let mut out = Sampling {
        temperature: TEMPERATURE,
        top_p: TOP_P,
        top_k: TOP_K,
        seed: None,
        max_tokens: None,
        stop: None,
        repeat_penalty: None,
        format: None,
    };
    let Some(options) = options else {
        return Ok(out);
    };
    let mut unknown: Vec<&str> = Vec::new();
    let mut unknown_count = 0usize;
    for (key, value) in options {
        if value.is_null() {
            continue;
        }
        let Some(kind) = known(key) else {
            // Logged once below, a few names, each cut short: a body of
            // many keys is not a way to fill the log.
            unknown_count += 1;
            if unknown.len() < 5 {
                let end = key.char_indices().nth(64).map_or(key.len(), |(i, _)| i);
                unknown.push(&key[..end]);
            }
            continue;
        };
        if !kind.accepts(value) {
            return Err(invalid(
                &format!("options.{key}"),
                format!("must be of type {}", kind.name()),
            ));
        }
        let float = value.as_f64().unwrap_or_default();
        // Integers may come as floats (Ollama truncates them).
        let integer = value
            .as_i64()
            .unwrap_or_else(|| float.clamp(i64::MIN as f64, i64::MAX as f64) as i64);
        let field = || format!("options.{key}");
        match key.as_str() {
            "temperature" if !(0.0..=2.0).contains(&float) => {
                return Err(invalid(&field(), "must be between 0 and 2"));
            }
            "temperature" => out.temperature = float,
            "top_p" if !(float > 0.0 && float <= 1.0) => {
                return Err(invalid(&field(), "must be in (0, 1]"));
            }
            "top_p" => out.top_p = float,
            "top_k" if integer > 100_000 => {
                return Err(invalid(&field(), "must be at most 100000"));
            }
            // 0 or less: off, as in Ollama.
            "top_k" => out.top_k = integer.max(0),
            "seed" => out.seed = Some(integer),
            // Ollama's -1 (no limit) and -2 (fill the context): the
            // server's default length, bounded by the context.
            "num_predict" => out.max_tokens = (integer > 0).then(|| integer.min(MAX_PREDICT)),
            "repeat_penalty" if !(float > 0.0 && float <= 10.0) => {
                return Err(invalid(&field(), "must be in (0, 10]"));
            }
            "repeat_penalty" => out.repeat_penalty = Some(float),
            "stop" => {
                let all: Vec<String> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect();
                if all.len() > MAX_STOPS || all.iter().any(|s| s.len() > MAX_STOP_BYTES) {
                    return Err(invalid(
                        &field(),
                        format!("at most {MAX_STOPS} sequences of at most {MAX_STOP_BYTES} bytes"),
                    ));
                }
                out.stop = Some(all);
            }
            _ => tracing::debug!(option = %key, "option accepted, not applied"),
        }
    }
    if unknown_count > 0 {
        tracing::debug!(count = unknown_count, first = ?unknown, "unknown options ignored");
    }
    Ok(out)
}

/// `format`: absent, null or `""` mean free text; `"json"` and schemas
/// need constrained decoding, which this server does not do yet: a 400
/// rather than output that may not parse.
pub(super) fn output_format(format: Option<&Value>) -> Result<Option<OutputFormat>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(OutputFormat::Json)),
        Some(schema @ Value::Object(_)) => Ok(Some(OutputFormat::JsonSchema(schema.clone()))),
        Some(_) => Err(invalid(
            "format",
            "expected \"json\" or a JSON schema object",
        )),
    }
}

/// `think`: the models here do not think; false (or absent) is fine.
pub(super) fn check_think(model: &str, think: Option<&Value>) -> Result<(), ApiError> {
    match think {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
        Some(Value::Bool(true)) | Some(Value::String(_)) => Err(invalid(
            "think",
            format!("\"{model}\" does not support thinking"),
        )),
        Some(_) => Err(invalid("think", "invalid think value")),
    }
}

/// `images`: no vision model here; an empty list is fine.
pub(super) fn check_images(
    field: &str,
    model: &str,
    images: Option<&Vec<String>>,
) -> Result<(), ApiError> {
    match images {
        Some(v) if !v.is_empty() => Err(invalid(
            field,
            format!("\"{model}\" does not support images"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn defaults_are_ollamas() {
        let s = sampling(None).map_err(|e| e.message);
        assert_eq!(
            s.as_ref().map(|s| (s.temperature, s.top_k, s.top_p)),
            Ok((0.8, 40, 0.9))
        );
        assert_eq!(s.map(|s| s.max_tokens), Ok(None));
    }

    #[test]
    fn options_map_onto_sampling_and_unknown_keys_are_ignored() {
        let o = opts(json!({
            "temperature": 0, "top_p": 0.5, "top_k": 7.9, "seed": 42, "num_predict": 16,
            "stop": ["\n"], "repeat_penalty": 1.1, "num_ctx": 2048, "mirostat": 0,
            "no_such_option": {"deep": [1, 2]}, "penalize_newline": true
        }));
        let s = sampling(Some(&o)).map_err(|e| e.message);
        assert_eq!(
            s,
            Ok(Sampling {
                temperature: 0.0,
                top_p: 0.5,
                top_k: 7,
                seed: Some(42),
                max_tokens: Some(16),
                stop: Some(vec!["\n".to_owned()]),
                repeat_penalty: Some(1.1),
                format: None,
            })
        );
        let many = opts(json!({"stop": vec!["x"; MAX_STOPS], "top_k": -3, "num_predict": 1e12}));
        let s = sampling(Some(&many)).map_err(|e| e.message);
        assert_eq!(
            s.as_ref().map(|s| s.stop.as_ref().map(Vec::len)),
            Ok(Some(MAX_STOPS))
        );
        assert_eq!(s.as_ref().map(|s| s.top_k), Ok(0));
        assert_eq!(s.map(|s| s.max_tokens), Ok(Some(MAX_PREDICT)));
        let unlimited = opts(json!({"num_predict": -1}));
        assert_eq!(
            sampling(Some(&unlimited)).map(|s| s.max_tokens).ok(),
            Some(None)
        );
    }

    #[test]
    fn a_known_option_of_the_wrong_type_is_named() {
        for (o, field) in [
            (json!({"temperature": "hot"}), "options.temperature"),
            (json!({"num_predict": [1]}), "options.num_predict"),
            (json!({"stop": "\n"}), "options.stop"),
            (json!({"stop": [1]}), "options.stop"),
            (json!({"use_mmap": 1}), "options.use_mmap"),
            (json!({"temperature": 2.5}), "options.temperature"),
            (json!({"top_p": 0}), "options.top_p"),
            (json!({"repeat_penalty": 0}), "options.repeat_penalty"),
            (json!({"top_k": 1e9}), "options.top_k"),
            (json!({"stop": vec!["x"; MAX_STOPS + 1]}), "options.stop"),
            (json!({"stop": ["x".repeat(257)]}), "options.stop"),
        ] {
            let e = sampling(Some(&opts(o))).err().map(|e| e.message);
            assert!(e.as_deref().is_some_and(|m| m.starts_with(field)), "{e:?}");
        }
    }

    #[test]
    fn formats_think_and_images_are_refused_clearly() {
        assert_eq!(output_format(None).ok(), Some(None));
        assert_eq!(output_format(Some(&json!(""))).ok(), Some(None));
        assert_eq!(output_format(Some(&json!(null))).ok(), Some(None));
        assert_eq!(
            output_format(Some(&json!("json"))).ok(),
            Some(Some(OutputFormat::Json))
        );
        assert_eq!(
            output_format(Some(&json!({"type": "object"}))).ok(),
            Some(Some(OutputFormat::JsonSchema(json!({"type": "object"}))))
        );
        assert!(output_format(Some(&json!("yaml"))).is_err());
        assert!(output_format(Some(&json!(3))).is_err());
        assert!(check_think("m", Some(&json!(false))).is_ok());
        assert!(check_think("m", Some(&json!(true))).is_err());
        assert!(check_think("m", Some(&json!("high"))).is_err());
        assert!(check_images("images", "m", Some(&vec![])).is_ok());
        assert!(check_images("images", "m", Some(&vec!["aGk=".to_owned()])).is_err());
    }
}
