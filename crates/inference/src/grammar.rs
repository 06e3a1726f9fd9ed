//! Constrained decoding: output that must be JSON (an object, or a value
//! valid against a JSON schema), enforced while sampling. Before every
//! sampled token the grammar computes which tokens may come next and every
//! other token's logit is set to minus infinity, so the model cannot write
//! anything else; end-of-turn tokens are allowed only where the JSON is
//! complete. The grammars and masks come from `llguidance` (the library
//! llama.cpp and vLLM use for the same), over a token trie of the model's
//! own vocabulary.
//!
//! A client's schema is hostile input. [`OutputFormat::check`] bounds its
//! shape before anything is compiled (size, `$ref`s, the lists whose
//! pairs `llguidance` compares, `patternProperties`), since its compile
//! step is not covered by its own limits; compiling runs on a thread with
//! a large stack; `llguidance`'s `ParserLimits` (lowered here) bound the
//! work per token and the lexer's memory; a schema it cannot compile is
//! an error before anything runs; remote `$ref`s are never fetched.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{TokRxInfo, TokTrie, TokenizerEnv};

use crate::error::catch_panics;
use crate::{InferenceError, TextTokenizer};

/// What a generation's output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// A JSON object (Ollama's `format: "json"`, OpenAI's `json_object`).
    Json,
    /// A JSON value valid against this JSON schema.
    JsonSchema(serde_json::Value),
}

/// Serialized size of a schema, at most.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Subschemas and values in a schema, at most.
const MAX_NODES: usize = 20_000;
/// `$ref`s in a schema, at most (each one is a level of recursion while
/// compiling).
const MAX_REFS: usize = 128;
/// Items of `enum`, `oneOf`, `anyOf`, `allOf`, `prefixItems`, at most
/// (`llguidance` compares `oneOf` options pairwise).
const MAX_LIST: usize = 1000;
/// Keys of `patternProperties`, at most (compared pairwise, each
/// comparison growing with all of them).
const MAX_PATTERN_PROPERTIES: usize = 16;
/// Stack for the compiling thread: recursion follows the schema.
const COMPILE_STACK: usize = 64 << 20;

impl OutputFormat {
    /// Refuses a schema whose shape would make compiling it costly: over
    /// [`MAX_SCHEMA_BYTES`], not an object, too many nodes or `$ref`s,
    /// long lists, many `patternProperties`. Cheap; call it before
    /// loading a model for the request.
    pub fn check(&self) -> Result<(), InferenceError> {
        let OutputFormat::JsonSchema(schema) = self else {
            return Ok(());
        };
        let refuse = |why: String| Err(InferenceError::Format(why));
        if !schema.is_object() {
            return refuse("a JSON schema must be an object".into());
        }
        let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_SCHEMA_BYTES {
            return refuse(format!(
                "the schema is {bytes} bytes; at most {MAX_SCHEMA_BYTES} are accepted"
            ));
        }
        let (mut nodes, mut refs) = (0usize, 0usize);
        let mut stack = vec![schema];
        while let Some(value) = stack.pop() {
            nodes += 1;
            if nodes > MAX_NODES {
                return refuse(format!("the schema has more than {MAX_NODES} values"));
            }
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        match key.as_str() {
                            "$ref" => refs += 1,
                            "enum" | "oneOf" | "anyOf" | "allOf" | "prefixItems"
                                if child.as_array().is_some_and(|a| a.len() > MAX_LIST) =>
                            {
                                return refuse(format!("`{key}` has more than {MAX_LIST} items"));
                            }
                            "patternProperties"
                                if child
                                    .as_object()
                                    .is_some_and(|p| p.len() > MAX_PATTERN_PROPERTIES) =>
                            {
                                return refuse(format!(
                                    "`patternProperties` has more than {MAX_PATTERN_PROPERTIES} patterns"
                                ));
                            }
                            _ => {}
                        }
                        stack.push(child);
                    }
                    if refs > MAX_REFS {
                        return refuse(format!("the schema has more than {MAX_REFS} `$ref`s"));
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        Ok(())
    }

    /// The schema the output is held to.
    fn schema(&self) -> serde_json::Value {
        let mut schema = match self {
            OutputFormat::Json => serde_json::json!({"type": "object"}),
            OutputFormat::JsonSchema(schema) => schema.clone(),
        };
        // Compact, conventional separators and no free whitespace: a small
        // model allowed free whitespace may fill its budget with newlines.
        // The client's own `x-guidance` options (regexes among them) are
        // replaced, not merged.
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "x-guidance".into(),
                serde_json::json!({
                    "item_separator": ", ",
                    "key_separator": ": ",
                    "whitespace_flexible": false,
                }),
            );
        }
        schema
    }
}

/// The model's vocabulary as `llguidance` sees it.
struct Vocabulary {
    trie: TokTrie,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// Only used for text a grammar forces; longest-match over the
    /// vocabulary spells the same bytes (it may not be the tokenization
    /// the model's own tokenizer would pick, which sampling never needs).
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.trie.greedy_tokenize(s)
    }
}

/// Compiles output formats for one model's vocabulary (built once per
/// loaded model, on first use: it indexes every token).
pub struct Grammars {
    factory: ParserFactory,
    vocab: usize,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammars")
            .field("vocab", &self.vocab)
            .finish_non_exhaustive()
    }
}

impl Grammars {
    /// Indexes `tokenizer`'s vocabulary; `stop_ids` end the output where
    /// the grammar allows it to end.
    pub fn new(tokenizer: &TextTokenizer, stop_ids: &[u32]) -> Result<Self, InferenceError> {
        let words = tokenizer.token_bytes();
        let vocab = words.len();
        let size = u32::try_from(vocab)
            .map_err(|_| InferenceError::Metadata("the vocabulary is too large".into()))?;
        let stops: Vec<u32> = stop_ids.iter().copied().filter(|id| *id < size).collect();
        let Some(&eos) = stops.first() else {
            return Err(InferenceError::Metadata(
                "the model has no end-of-turn token to end constrained output".into(),
            ));
        };
        let factory = catch_panics("indexing the vocabulary", || {
            let info = TokRxInfo::new(size, eos);
            let trie = TokTrie::from(&info, &words).with_eos_tokens(&stops);
            let env: toktrie::TokEnv = Arc::new(Vocabulary { trie });
            let mut factory = ParserFactory::new_simple(&env)
                .map_err(|e| InferenceError::Metadata(format!("constrained decoding: {e}")))?;
            factory.quiet();
            let limits = factory.limits_mut();
            // Per generation: lexer states cost 1–2 kB each.
            limits.max_lexer_states = 50_000;
            // Per token (every running request waits for the step).
            limits.step_lexer_fuel = 100_000;
            limits.step_max_items = 20_000;
            // Errors name the problem, not the grammar or the output.
            limits.verbose_errors = false;
            Ok(factory)
        })?;
        Ok(Grammars { factory, vocab })
    }

    /// A fresh constraint for one generation. A schema that cannot be
    /// compiled (unsupported keywords, contradictions, over the size or
    /// work limits) is [`InferenceError::Format`].
    pub fn constraint(&self, format: &OutputFormat) -> Result<Constraint, InferenceError> {
        format.check()?;
        let grammar = TopLevelGrammar::from_json_schema(format.schema());
        // Compiling recurses along the schema: on a thread of its own with
        // a stack to match, waited for here.
        let parser = std::thread::scope(|scope| {
            let compile = std::thread::Builder::new()
                .name("offgrid-grammar".into())
                .stack_size(COMPILE_STACK)
                .spawn_scoped(scope, || {
                    catch_panics("compiling the output format", || {
                        self.factory
                            .create_parser(grammar)
                            .map_err(|e| InferenceError::Format(first_line(&e.to_string())))
                    })
                })
                .map_err(|e| InferenceError::Candle(format!("cannot start a thread: {e}")))?;
            compile.join().unwrap_or_else(|_| {
                Err(InferenceError::Format(
                    "the schema could not be compiled".into(),
                ))
            })
        })
        .map_err(|e| match e {
            InferenceError::Candle(why) if why.starts_with("compiling") => {
                InferenceError::Format("the schema could not be compiled".into())
            }
            other => other,
        })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(InferenceError::Format(first_line(&e)));
        }
        Ok(Constraint {
            matcher,
            vocab: self.vocab,
        })
    }
}

/// The first line of an error, bounded: `llguidance` may append the
/// grammar, which could be the client's whole schema.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

/// One generation's grammar state.
pub struct Constraint {
    matcher: Matcher,
    vocab: usize,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("stopped", &self.matcher.is_stopped())
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// Sets the logit of every token the grammar does not allow next to
    /// minus infinity (logits past the vocabulary too).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), InferenceError> {
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| InferenceError::Constraint(first_line(&e.to_string())))?;
        if allowed.num_set() == 0 {
            return Err(InferenceError::Constraint(
                "no token can continue the output".into(),
            ));
        }
        for (id, logit) in logits.iter_mut().enumerate() {
            let ok = id < self.vocab && u32::try_from(id).is_ok_and(|t| allowed.is_allowed(t));
            if !ok {
                *logit = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Advances past the sampled token.
    pub fn advance(&mut self, id: u32) -> Result<(), InferenceError> {
        self.matcher
            .consume_token(id)
            .map_err(|e| InferenceError::Constraint(first_line(&e.to_string())))
    }

    /// Whether the output is complete and nothing may follow it.
    pub fn is_complete(&self) -> bool {
        self.matcher.is_stopped()
    }
}
