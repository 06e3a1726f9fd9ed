//! Constrained decoding: output that must be JSON (an object, or a value
//! valid against a JSON schema), enforced while sampling. Before every
//! sampled token the grammar computes which tokens may come next and every
//! other token's logit is set to minus infinity, so the model cannot write
//! anything else; end-of-turn tokens are allowed only where the JSON is
//! complete. The grammars and masks come from `llguidance` (the library
//! llama.cpp and vLLM use for the same), over a token trie of the model's
//! own vocabulary.
//!
//! A client's schema is hostile input: `llguidance` bounds compile and
//! per-token work (its `ParserLimits`), a schema it cannot compile is an
//! error before anything runs, and remote `$ref`s are never fetched.

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

impl OutputFormat {
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
            Ok(factory)
        })?;
        Ok(Grammars { factory, vocab })
    }

    /// A fresh constraint for one generation. A schema that cannot be
    /// compiled (unsupported keywords, contradictions, over the size or
    /// work limits) is [`InferenceError::Format`].
    pub fn constraint(&self, format: &OutputFormat) -> Result<Constraint, InferenceError> {
        let grammar = TopLevelGrammar::from_json_schema(format.schema());
        let parser = catch_panics("compiling the output format", || {
            self.factory
                .create_parser(grammar)
                .map_err(|e| InferenceError::Format(first_line(&e.to_string())))
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
