//! A `tokenizers::Tokenizer` rebuilt from GGUF metadata, for models that
//! ship no `tokenizer.json` (SmolLM2 among them). SentencePiece models
//! (`tokenizer.ggml.model = llama`) get BPE merges derived from their piece
//! scores, with byte fallback.
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
use crate::error::catch_panics;

/// Longest token text accepted (real vocabularies stay under a few
/// hundred bytes).
const MAX_TOKEN_BYTES: usize = 4096;

/// Token types in `tokenizer.ggml.token_type` that are special tokens.
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// Text ⇄ token ids for one model.
pub struct TextTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    /// Prepend BOS when encoding (`tokenizer.ggml.add_bos_token`).
    add_bos: bool,
    special: Vec<u32>,
    kind: Kind,
}

/// How token texts spell bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GPT-2's byte-level alphabet: every byte is one printable character.
    ByteLevel,
    /// SentencePiece: `▁` for a space, `<0xNN>` pieces for raw bytes.
    SentencePiece,
}

/// The byte GPT-2's byte-level alphabet spells with `c`: printable
/// Latin-1 characters stand for themselves, the other bytes were moved to
/// U+0100 onwards in order.
fn byte_level_byte(c: char) -> Option<u8> {
    let printable = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let code = u32::from(c);
    if printable(code) {
        return u8::try_from(code).ok();
    }
    let n = code.checked_sub(256)?;
    (0u32..256)
        .filter(|b| !printable(*b))
        .nth(usize::try_from(n).ok()?)
        .and_then(|b| u8::try_from(b).ok())
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

/// Byte-level BPE from `tokenizer.ggml.merges`, as llama.cpp builds it.
fn byte_level_bpe(content: &Content, tokens: &[String]) -> Result<Tokenizer, InferenceError> {
    let merges = string_array(content, "tokenizer.ggml.merges")?;
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
    Ok(inner)
}

/// Token type of SentencePiece's byte pieces (`<0x41>`).
const BYTE: i32 = 6;
/// Token type of ordinary pieces.
const NORMAL: i32 = 1;

/// SentencePiece (`tokenizer.ggml.model = llama`: TinyLlama, Llama 2,
/// Mistral) as a BPE whose merges come from the piece scores, the way
/// Hugging Face converts these models: every split of a piece into two
/// pieces of the vocabulary is a merge, ranked by the piece's score, so
/// the highest-scoring merge applies first as in llama.cpp. Spaces become
/// `▁` with one prepended (unless `add_space_prefix` is false), and
/// characters outside the vocabulary fall back to byte pieces.
fn sentencepiece(
    content: &Content,
    tokens: &[String],
    types: &[i32],
) -> Result<Tokenizer, InferenceError> {
    use tokenizers::decoders::byte_fallback::ByteFallback;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::decoders::sequence::Sequence as DecoderSequence;
    use tokenizers::decoders::strip::Strip;
    use tokenizers::normalizers::{Prepend, Replace};
    let scores: Vec<f32> = meta(content, "tokenizer.ggml.scores")?
        .to_vec()
        .map_err(|e| InferenceError::Metadata(format!("tokenizer.ggml.scores: {e}")))?
        .iter()
        .map(|v| v.to_f32().unwrap_or(0.0))
        .collect();
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut merges: Vec<(f32, u32, u32, String, String)> = Vec::new();
    for (i, piece) in tokens.iter().enumerate() {
        if types.get(i).copied().unwrap_or(NORMAL) != NORMAL {
            continue;
        }
        let score = scores.get(i).copied().unwrap_or(0.0);
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if let (Some(li), Some(ri)) = (vocab.get(l), vocab.get(r)) {
                merges.push((score, *li, *ri, l.to_owned(), r.to_owned()));
            }
        }
    }
    // Highest score first; among one piece's splits, by the halves' ids.
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges = merges.into_iter().map(|(_, _, _, l, r)| (l, r)).collect();
    let unk = optional_id(content, "tokenizer.ggml.unknown_token_id")
        .or_else(|| types.iter().position(|t| *t == 2).map(|i| i as u32))
        .and_then(|i| tokens.get(i as usize).cloned());
    let has_bytes = types.contains(&BYTE);
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(has_bytes)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let mut inner = Tokenizer::new(builder.build().map_err(tok_err)?);
    let prefix = content
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);
    let replace = Replace::new(" ", "\u{2581}").map_err(tok_err)?;
    let normalizer: tokenizers::NormalizerWrapper = if prefix {
        tokenizers::normalizers::Sequence::new(vec![
            Prepend::new("\u{2581}".into()).into(),
            replace.into(),
        ])
        .into()
    } else {
        replace.into()
    };
    inner.with_normalizer(Some(normalizer)).map_err(tok_err)?;
    let mut decoders = vec![
        tokenizers::DecoderWrapper::Replace(Replace::new("\u{2581}", " ").map_err(tok_err)?),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(inner)
}

impl TextTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata: byte-level BPE
    /// (`tokenizer.ggml.model = gpt2`) or SentencePiece (`llama`).
    /// A file the `tokenizers` crate chokes on is an error, not a panic.
    pub fn from_gguf(content: &Content) -> Result<Self, InferenceError> {
        catch_panics("building the tokenizer", || Self::build(content))
    }

    fn build(content: &Content) -> Result<Self, InferenceError> {
        let kind = meta(content, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| InferenceError::Metadata(e.to_string()))?
            .clone();
        let tokens = string_array(content, "tokenizer.ggml.tokens")?;
        // Deriving SentencePiece merges looks up every split of every
        // piece: quadratic in a piece's length, so bound it.
        if let Some(long) = tokens.iter().find(|t| t.len() > MAX_TOKEN_BYTES) {
            return Err(InferenceError::Metadata(format!(
                "a token of {} bytes is longer than {MAX_TOKEN_BYTES}",
                long.len()
            )));
        }
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| InferenceError::Metadata(e.to_string()))?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let mut inner = match kind.as_str() {
            "gpt2" => byte_level_bpe(content, &tokens)?,
            "llama" => sentencepiece(content, &tokens, &types)?,
            other => {
                return Err(InferenceError::Metadata(format!(
                    "tokenizer model {other:?} is not supported (byte-level BPE \"gpt2\" and SentencePiece \"llama\" are)"
                )));
            }
        };
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
        let flag = |key: &str| content.metadata.get(key).and_then(|v| v.to_bool().ok());
        Ok(TextTokenizer {
            inner,
            bos: optional_id(content, "tokenizer.ggml.bos_token_id"),
            eos: optional_id(content, "tokenizer.ggml.eos_token_id"),
            // llama.cpp adds BOS for SentencePiece models unless told not to.
            add_bos: flag("tokenizer.ggml.add_bos_token").unwrap_or(kind == "llama"),
            special,
            kind: if kind == "gpt2" {
                Kind::ByteLevel
            } else {
                Kind::SentencePiece
            },
        })
    }

    /// Token ids of `text`; special-token markup (e.g. `<|im_start|>`) is
    /// recognised. BOS is prepended when the model asks for it
    /// (`tokenizer.ggml.add_bos_token`; SentencePiece models by default)
    /// and the text does not already start with it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        let mut ids = self
            .inner
            .encode(text, false)
            .map_err(tok_err)?
            .get_ids()
            .to_vec();
        if let Some(bos) = self.bos.filter(|_| self.add_bos)
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
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

    /// The bytes every token stands for, by id (what constrained decoding
    /// matches grammars against). Special tokens are their text behind a
    /// `0xFF` byte, which no UTF-8 text contains; a token whose text does
    /// not spell bytes in the tokenizer's alphabet is empty (never
    /// allowed by a grammar).
    pub fn token_bytes(&self) -> Vec<Vec<u8>> {
        let size = u32::try_from(self.vocab_size()).unwrap_or(u32::MAX);
        (0..size)
            .map(|id| {
                let Some(text) = self.token(id) else {
                    return Vec::new();
                };
                if self.is_special(id) {
                    let mut bytes = vec![0xFF];
                    bytes.extend_from_slice(text.as_bytes());
                    return bytes;
                }
                match self.kind {
                    Kind::ByteLevel => text
                        .chars()
                        .map(byte_level_byte)
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_default(),
                    Kind::SentencePiece => sentencepiece_bytes(&text),
                }
            })
            .collect()
    }

    /// The underlying `tokenizers` tokenizer (e.g. for streaming decode).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// A SentencePiece piece's bytes: `<0xNN>` is the byte, `▁` a space.
fn sentencepiece_bytes(piece: &str) -> Vec<u8> {
    if let Some(hex) = piece
        .strip_prefix("<0x")
        .and_then(|rest| rest.strip_suffix('>'))
        .filter(|hex| hex.len() == 2)
        && let Ok(byte) = u8::from_str_radix(hex, 16)
    {
        return vec![byte];
    }
    piece.replace('\u{2581}', " ").into_bytes()
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
    fn the_byte_level_alphabet_covers_every_byte_once() {
        let mut seen = [false; 256];
        for c in (0u32..0x200).filter_map(char::from_u32) {
            if let Some(b) = byte_level_byte(c) {
                assert!(!seen[b as usize], "byte {b} spelled twice");
                seen[b as usize] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(byte_level_byte('Ġ'), Some(b' '));
        assert_eq!(byte_level_byte('Ċ'), Some(b'\n'));
        assert_eq!(byte_level_byte('a'), Some(b'a'));
        assert_eq!(byte_level_byte('\u{4e00}'), None);
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

    /// A small SentencePiece vocabulary in GGUF metadata: control tokens,
    /// the 256 byte pieces, and pieces with scores.
    fn spm_content() -> Content {
        use candle_core::quantized::gguf_file::VersionedMagic;
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, CONTROL, CONTROL];
        let mut scores = vec![0f32; 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(BYTE);
            scores.push(0.0);
        }
        for (piece, score) in [
            ("\u{2581}", -1.0),
            ("h", -2.0),
            ("e", -2.0),
            ("l", -2.0),
            ("o", -2.0),
            ("w", -2.0),
            ("r", -2.0),
            ("d", -2.0),
            ("ll", -3.0),
            ("he", -4.0),
            ("llo", -5.0),
            ("hello", -6.0),
            ("\u{2581}hello", -7.0),
            ("or", -8.0),
            ("\u{2581}w", -9.0),
            ("ld", -10.0),
            ("\u{2581}wor", -11.0),
            ("\u{2581}world", -12.0),
            ("\u{2581}h", -13.0),
        ] {
            tokens.push(piece.into());
            types.push(NORMAL);
            scores.push(score);
        }
        let strings =
            |v: &[String]| Value::Array(v.iter().map(|t| Value::String(t.clone())).collect());
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(
            "tokenizer.ggml.model".to_owned(),
            Value::String("llama".into()),
        );
        metadata.insert("tokenizer.ggml.tokens".to_owned(), strings(&tokens));
        metadata.insert(
            "tokenizer.ggml.token_type".to_owned(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        );
        metadata.insert(
            "tokenizer.ggml.scores".to_owned(),
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        );
        metadata.insert("tokenizer.ggml.bos_token_id".to_owned(), Value::U32(1));
        metadata.insert("tokenizer.ggml.eos_token_id".to_owned(), Value::U32(2));
        metadata.insert("tokenizer.ggml.unknown_token_id".to_owned(), Value::U32(0));
        Content {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensor_infos: std::collections::HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn sentencepiece_merges_by_score_with_byte_fallback() {
        let tok = TextTokenizer::from_gguf(&spm_content()).expect("tokenizer");
        let pieces = |text: &str| -> Vec<String> {
            tok.encode(text)
                .expect("encode")
                .iter()
                .map(|i| tok.token(*i).expect("token"))
                .collect()
        };
        // BOS first, a space prefix, whole words where the vocabulary has them.
        assert_eq!(
            pieces("hello world"),
            ["<s>", "\u{2581}hello", "\u{2581}world"]
        );
        // A character outside the vocabulary becomes its UTF-8 bytes.
        assert_eq!(pieces("hé"), ["<s>", "\u{2581}h", "<0xC3>", "<0xA9>"]);
        // Control tokens in the text are recognised, and BOS is not doubled.
        assert_eq!(pieces("<s>hello</s>"), ["<s>", "\u{2581}hello", "</s>"]);
        // Each token's bytes: spaces for ▁, raw bytes for byte pieces,
        // special tokens behind 0xFF.
        let bytes = tok.token_bytes();
        let id = |t: &str| tok.id(t).expect("id") as usize;
        assert_eq!(bytes[id("\u{2581}hello")], b" hello");
        assert_eq!(bytes[id("<0xC3>")], [0xC3]);
        assert_eq!(bytes[id("</s>")], b"\xFF</s>");
        // Decoding drops the prefix space and reassembles the bytes.
        for text in ["hello world", "hé", "hello  world"] {
            let ids = tok.encode(text).expect("encode");
            assert_eq!(tok.decode(&ids[1..]).expect("decode"), text);
        }
    }
}
