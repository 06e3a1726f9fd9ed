//! Tests of chunking: examples of where it cuts, a tokenizer counter with
//! truncation and padding, and properties over arbitrary texts (nothing
//! lost, in order, within the token bound, overlaps within theirs).

use proptest::prelude::*;

use super::*;

/// One token per character: cuts land anywhere, not only between words.
struct CharCounter;

impl TokenCounter for CharCounter {
    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }
}

fn config(max_tokens: usize, overlap_tokens: usize) -> ChunkConfig {
    ChunkConfig {
        max_tokens,
        overlap_tokens,
    }
}

#[test]
fn paragraphs_are_kept_whole_when_they_fit() {
    let text = "One two three.\n\nFour five six.\n\nSeven eight.";
    let chunks = chunk(text, &WhitespaceCounter, &config(4, 0));
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["One two three.", "Four five six.", "Seven eight."]);
    assert_eq!(chunks[1].start_byte, 16);
    assert_eq!(chunks[1].end_byte, 30);
    assert_eq!(chunks[1].index, 1);
    assert_eq!(chunks[1].tokens, 3);
}

#[test]
fn a_long_sentence_is_cut_between_words() {
    let text = "alpha beta gamma delta epsilon zeta eta theta";
    let chunks = chunk(text, &WhitespaceCounter, &config(3, 0));
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        ["alpha beta gamma", "delta epsilon zeta", "eta theta"]
    );
}

#[test]
fn consecutive_chunks_overlap() {
    let text = "alpha beta gamma delta epsilon zeta eta theta";
    let chunks = chunk(text, &WhitespaceCounter, &config(4, 2));
    assert!(chunks.len() > 2);
    for pair in chunks.windows(2) {
        assert!(pair[1].start_byte < pair[0].end_byte, "{pair:?}");
    }
    assert_eq!(chunks[0].text, "alpha beta gamma delta");
    assert!(chunks[1].text.starts_with("gamma delta"), "{chunks:?}");
}

#[test]
fn whitespace_alone_gives_no_chunk_and_bad_configs_are_tamed() {
    assert!(chunk(" \n\n\t ", &WhitespaceCounter, &ChunkConfig::default()).is_empty());
    assert!(chunk("", &WhitespaceCounter, &ChunkConfig::default()).is_empty());
    let chunks = chunk("a b c", &WhitespaceCounter, &config(0, 9));
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
}

/// A tokenizer.json shaped like all-MiniLM-L6-v2's: `[CLS] … [SEP]`
/// around the words, truncation and padding to a fixed length (4 and 8
/// here, 128 there).
const TINY_TOKENIZER: &str = r#"{
  "version": "1.0",
  "truncation": {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0},
  "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null,
              "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
  "added_tokens": [],
  "normalizer": null,
  "pre_tokenizer": {"type": "Whitespace"},
  "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
  "decoder": null,
  "model": {"type": "WordLevel", "unk_token": "[UNK]",
            "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "b": 5}}
}"#;

#[test]
fn the_tokenizer_counter_ignores_truncation_and_padding_and_counts_specials() {
    let tokenizer = Tokenizer::from_bytes(TINY_TOKENIZER).expect("tiny tokenizer");
    let truncated = tokenizer.encode("a b a b a b", true).expect("encode");
    assert_eq!(truncated.len(), 8, "the file itself truncates and pads");
    let counter = TokenizerCounter::new(tokenizer);
    assert_eq!(counter.count("a b a b a b"), 8, "6 words, [CLS] and [SEP]");
    assert_eq!(counter.count("a"), 3);
    let chunks = chunk("a b a b a b a b a b", &counter, &config(6, 0));
    assert!(chunks.iter().all(|c| c.tokens <= 6), "{chunks:?}");
    assert_eq!(chunks.len(), 3, "4 words a chunk: {chunks:?}");
}

/// Texts of words, punctuation, spaces, tabs and line breaks, some
/// multi-byte.
fn text() -> impl Strategy<Value = String> {
    "([a-z]{1,8}|é|字字|[.,!?;]|[ ]{1,3}|\t|\n|\n\n|\r\n){0,120}"
}

/// Checks every promise of [`chunk`] for one input.
fn check(
    text: &str,
    counter: &dyn TokenCounter,
    config: &ChunkConfig,
) -> Result<(), TestCaseError> {
    let chunks = chunk(text, counter, config);
    let max = config.max_tokens.max(1);
    let overlap = config.overlap_tokens.min(max - 1);
    let mut covered = vec![false; text.len()];
    for (i, c) in chunks.iter().enumerate() {
        prop_assert_eq!(c.index, i);
        prop_assert_eq!(text.get(c.start_byte..c.end_byte), Some(c.text.as_str()));
        prop_assert!(!c.text.trim().is_empty());
        prop_assert_eq!(c.tokens, counter.count(&c.text));
        prop_assert!(
            c.tokens <= max,
            "{:?} has {} tokens > {}",
            c.text,
            c.tokens,
            max
        );
        covered[c.start_byte..c.end_byte]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        prop_assert!(
            a.start_byte < b.start_byte && a.end_byte < b.end_byte,
            "out of order: {:?}",
            pair
        );
        if b.start_byte < a.end_byte {
            let shared = counter.count(&text[b.start_byte..a.end_byte]);
            prop_assert!(
                shared <= overlap,
                "{:?} share {} tokens > {}",
                pair,
                shared,
                overlap
            );
        }
    }
    for (at, ch) in text.char_indices() {
        if !ch.is_whitespace() {
            prop_assert!(covered[at], "{:?} at byte {} is in no chunk", ch, at);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn chunking_keeps_every_word_in_order_within_bounds(
        text in text(),
        max_tokens in 0usize..12,
        overlap_tokens in 0usize..6,
    ) {
        check(&text, &WhitespaceCounter, &config(max_tokens, overlap_tokens))?;
    }

    #[test]
    fn chunking_by_characters_keeps_every_character(
        text in text(),
        max_tokens in 1usize..30,
        overlap_tokens in 0usize..10,
    ) {
        check(&text, &CharCounter, &config(max_tokens, overlap_tokens))?;
    }
}
