//! Chunking extracted text into pieces the embedding model reads whole:
//! at most [`ChunkConfig::max_tokens`] tokens each, by the model's own
//! tokenizer ([`TokenCounter`]), consecutive chunks sharing up to
//! [`ChunkConfig::overlap_tokens`] tokens so a sentence cut at a boundary
//! is still found.
//!
//! The splitting is `text-splitter`'s: it cuts at the highest semantic
//! level that fits (runs of blank lines, then line breaks, sentences,
//! words, graphemes, characters, all by Unicode's rules) and fills each
//! chunk with as many whole pieces of that level as fit. Chunks are
//! trimmed of surrounding whitespace; whitespace alone is never a chunk.

use text_splitter::{ChunkConfig as SplitterConfig, ChunkSizer, TextSplitter};
use tokenizers::Tokenizer;

/// Counts tokens the way the embedding model will see a text.
///
/// Implementations must be monotone enough for splitting to work: a text
/// does not count fewer tokens than a piece of it (apart from special
/// tokens added once per text).
pub trait TokenCounter {
    /// The number of tokens in `text`.
    fn count(&self, text: &str) -> usize;
}

/// One token per run of non-whitespace characters: a cheap stand-in for a
/// real tokenizer, for tests and rough estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhitespaceCounter;

impl TokenCounter for WhitespaceCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// A Hugging Face tokenizer (the model's `tokenizer.json`) counting the
/// tokens of a text as the model's input, special tokens included (for
/// all-MiniLM-L6-v2, `[CLS]` and `[SEP]`: a chunk of 256 by this count is
/// exactly the model's 256-token window).
///
/// Truncation and padding are turned off in [`TokenizerCounter::new`]:
/// all-MiniLM-L6-v2's `tokenizer.json` truncates and pads to 128, which
/// would make every text count 128 and every chunk as long as the whole
/// document.
#[derive(Debug, Clone)]
pub struct TokenizerCounter {
    tokenizer: Tokenizer,
}

impl TokenizerCounter {
    /// Counts with `tokenizer`, its truncation and padding removed.
    pub fn new(mut tokenizer: Tokenizer) -> Self {
        // Only setting truncation can fail (a stride too long for it);
        // removing it cannot.
        let _ = tokenizer.with_truncation(None);
        tokenizer.with_padding(None);
        TokenizerCounter { tokenizer }
    }

    /// The tokenizer counting.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

impl TokenCounter for TokenizerCounter {
    /// The length of the encoding with special tokens. A text the
    /// tokenizer refuses counts as its length in bytes: more than its
    /// tokens, so the splitter cuts it smaller rather than larger.
    fn count(&self, text: &str) -> usize {
        self.tokenizer
            .encode_fast(text, true)
            .map_or(text.len(), |encoding| encoding.len())
    }
}

/// How to chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    /// The most tokens in a chunk. all-MiniLM-L6-v2 reads 256 tokens
    /// (its `max_seq_length`, special tokens included) and ignores the
    /// rest. 0 is taken as 1.
    pub max_tokens: usize,
    /// The most tokens two consecutive chunks share. At least one less
    /// than `max_tokens` (a larger value is lowered to that), so chunks
    /// always move forward.
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            max_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

/// A piece of a text, ready to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its position among the text's chunks, from 0.
    pub index: usize,
    /// `text[start_byte..end_byte]` of the chunked text.
    pub text: String,
    /// Byte offset of its first byte in the chunked text.
    pub start_byte: usize,
    /// Byte offset just past its last byte in the chunked text.
    pub end_byte: usize,
    /// Its length by the counter it was cut with.
    pub tokens: usize,
}

/// `text-splitter`'s view of a [`TokenCounter`].
struct Sizer<'a>(&'a dyn TokenCounter);

impl ChunkSizer for Sizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count(chunk)
    }
}

/// Cuts `text` into chunks of at most `config.max_tokens` tokens by
/// `counter`, in order, overlapping by at most `config.overlap_tokens`,
/// preferring paragraph, then line, sentence and word boundaries.
///
/// Every non-whitespace byte of `text` is in some chunk. The one case a
/// chunk can exceed `max_tokens` is a single character (a grapheme
/// cluster) that counts more than `max_tokens` on its own.
pub fn chunk(text: &str, counter: &dyn TokenCounter, config: &ChunkConfig) -> Vec<Chunk> {
    let max_tokens = config.max_tokens.max(1);
    let overlap = config.overlap_tokens.min(max_tokens - 1);
    let plain = || SplitterConfig::new(max_tokens).with_sizer(Sizer(counter));
    // `with_overlap` refuses only an overlap of the capacity or more,
    // ruled out above; without overlap if it ever did.
    let splitter_config = plain().with_overlap(overlap).unwrap_or_else(|_| plain());
    TextSplitter::new(splitter_config)
        .chunk_indices(text)
        .enumerate()
        .map(|(index, (start_byte, piece))| Chunk {
            index,
            text: piece.to_owned(),
            start_byte,
            end_byte: start_byte + piece.len(),
            tokens: counter.count(piece),
        })
        .collect()
}

#[cfg(test)]
mod tests;
