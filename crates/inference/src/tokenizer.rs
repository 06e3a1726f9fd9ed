//! A `tokenizers::Tokenizer` rebuilt from GGUF metadata, for models that
//! ship no `tokenizer.json` (SmolLM2 among them).
//!
//! For byte-level BPE models (`tokenizer.ggml.model = gpt2`) this matches
//! llama.cpp: BPE from `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`,
//! a pre-tokenizer that splits digits individually and then applies the
//! byte-level split without a prefix space, the byte-level decoder, and
//! token types 3 (control) and 4 (user-defined) as special tokens.
//! (candle's own helper adds a prefix space and keeps digit runs, which
//! turns `user` into 2914 instead of 4093.)

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::InferenceError;

/// Token types in `tokenizer.ggml.token_type` that are special tokens.
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// Text ⇄ token ids for one model.
pub struct TextTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    special: Vec<u32>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

fn meta<'a>(content: &'a Content, key: &str) -> Result<&'a Value, InferenceError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| InferenceError::Metadata(format!("{key} is missing")))
}

fn string_array(content: &Content, key: &str) -> Result<Vec<String>, InferenceError> {
    meta(content, key)?
        .to_vec()
        .map_err(|e| InferenceError::Metadata(format!("{key}: {e}")))?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| InferenceError::Metadata(format!("{key}: {e}")))
        })
        .collect()
}

fn optional_id(content: &Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

fn tok_err(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Tokenizer(e.to_string())
}

/// llama.cpp's split pattern for `tokenizer.ggml.pre = qwen2` (digits one
/// by one).
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's split pattern for `llama-bpe` (Llama 3; digits in threes).
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value.
/// Unknown values get GPT-2's byte-level split with single digits, as
/// llama.cpp falls back to its default.
fn pre_tokenizer(pre: &str) -> Result<tokenizers::PreTokenizerWrapper, InferenceError> {
    use tokenizers::SplitDelimiterBehavior;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    let split = |pattern: &str| -> Result<tokenizers::PreTokenizerWrapper, InferenceError> {
        let split = Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(tok_err)?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ])
        .into())
    };
    match pre {
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2_SPLIT),
        "llama-bpe" | "llama3" | "smaug-bpe" => split(LLAMA3_SPLIT),
        _ => Ok(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, false, true).into(),
        ])
        .into()),
    }
}

impl TextTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata.
    pub fn from_gguf(content: &Content) -> Result<Self, InferenceError> {
        let kind = meta(content, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| InferenceError::Metadata(e.to_string()))?;
        if kind != "gpt2" {
            return Err(InferenceError::Metadata(format!(
                "tokenizer model {kind:?} is not supported yet (only byte-level BPE, \"gpt2\")"
            )));
        }
        let tokens = string_array(content, "tokenizer.ggml.tokens")?;
        let merges = string_array(content, "tokenizer.ggml.merges")?;
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| InferenceError::Metadata(e.to_string()))?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| InferenceError::Metadata(format!("malformed merge {m:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tok_err)?;
        let mut inner = Tokenizer::new(bpe);
        let pre = content
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("default", String::as_str);
        inner.with_pre_tokenizer(Some(pre_tokenizer(pre)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let special: Vec<u32> = types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(**t, CONTROL | USER_DEFINED))
            .map(|(i, _)| i as u32)
            .collect();
        let added: Vec<AddedToken> = special
            .iter()
            .filter_map(|i| tokens.get(*i as usize))
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        inner.add_special_tokens(added).map_err(tok_err)?;
        Ok(TextTokenizer {
            inner,
            bos: optional_id(content, "tokenizer.ggml.bos_token_id"),
            eos: optional_id(content, "tokenizer.ggml.eos_token_id"),
            special,
        })
    }

    /// Token ids of `text`; special-token markup (e.g. `<|im_start|>`) is
    /// recognised. No BOS is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// Text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.inner.decode(ids, false).map_err(tok_err)
    }

    /// The text of one token, if it is in the vocabulary.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a token's text.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Beginning-of-sequence id.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence id.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `id` is a special (control or user-defined) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_ok()
    }

    /// Vocabulary size including special tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer (e.g. for streaming decode).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn pieces(pre: &str, text: &str) -> Vec<String> {
        let p = pre_tokenizer(pre).expect("pre-tokenizer");
        let mut s = PreTokenizedString::from(text);
        p.pre_tokenize(&mut s).expect("pre-tokenize");
        s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(piece, _, _)| piece.to_owned())
            .collect()
    }

    #[test]
    fn qwen2_and_llama3_split_like_llama_cpp() {
        // Byte-level: space is Ġ, newline Ċ.
        assert_eq!(
            pieces("qwen2", "I've 12345 apples\n\n"),
            ["I", "'ve", "Ġ", "1", "2", "3", "4", "5", "Ġapples", "ĊĊ"]
        );
        assert_eq!(
            pieces("llama-bpe", "I've 12345 apples\n\n"),
            ["I", "'ve", "Ġ", "123", "45", "Ġapples", "ĊĊ"]
        );
        // SmolLM2 and unknown values: GPT-2's split with single digits.
        assert_eq!(pieces("smollm", "I've 12"), ["I", "'ve", "Ġ", "1", "2"]);
    }
}
