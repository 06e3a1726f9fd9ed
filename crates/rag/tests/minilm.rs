//! Chunking with the real all-MiniLM-L6-v2 tokenizer, from the models
//! directory (`$OFFGRID_MODELS_DIR`, else `$OFFGRID_HOME/models`, else
//! `~/.offgrid-llm/models`; `cargo xtask models` installs it): its
//! `tokenizer.json` truncates and pads to 128, which the counter must undo.

use std::path::PathBuf;

use offgrid_rag::{ChunkConfig, TokenCounter, TokenizerCounter, chunk};
use tokenizers::Tokenizer;

fn minilm_tokenizer() -> Tokenizer {
    let models = std::env::var_os("OFFGRID_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("OFFGRID_HOME").map(|h| PathBuf::from(h).join("models")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".offgrid-llm/models")))
        .expect("HOME or OFFGRID_HOME");
    let path = models.join("all-minilm-l6-v2/tokenizer.json");
    Tokenizer::from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask models`", path.display()))
}

#[test]
fn minilm_chunks_fit_its_256_token_window() {
    let counter = TokenizerCounter::new(minilm_tokenizer());
    assert_eq!(counter.count("Hello world"), 4, "[CLS] hello world [SEP]");
    let sentence = "The quick brown fox jumps over the lazy dog near the riverbank. ";
    let paragraph = sentence.repeat(12);
    let text = vec![paragraph.trim(); 20].join("\n\n");
    let whole = counter.count(&text);
    assert!(whole > 2000, "no truncation: {whole} tokens");
    let chunks = chunk(&text, &counter, &ChunkConfig::default());
    assert!(chunks.len() >= 8, "{} chunks", chunks.len());
    for c in &chunks {
        assert!(c.tokens <= 256, "chunk {} has {} tokens", c.index, c.tokens);
        assert!(
            c.tokens > 100,
            "chunks are filled: {} has {}",
            c.index,
            c.tokens
        );
    }
    // Each 12-sentence paragraph (about 170 tokens) fits whole: cuts fall
    // between sentences.
    assert!(chunks.iter().all(|c| c.text.ends_with('.')), "{chunks:?}");
}

/// `cargo test -p offgrid-rag --test minilm -- --ignored --nocapture`:
/// how long chunking a megabyte of prose takes with the real tokenizer.
#[test]
#[ignore = "a timing, not a check: run it by hand"]
fn chunking_a_megabyte_timing() {
    let counter = TokenizerCounter::new(minilm_tokenizer());
    let sentence = "The quick brown fox jumps over the lazy dog near the riverbank, said Anna. ";
    let text: String = (0..14_000)
        .map(|i| match i % 9 {
            8 => format!("{sentence}\n\n"),
            _ => sentence.to_owned(),
        })
        .collect();
    let start = std::time::Instant::now();
    let chunks = chunk(&text, &counter, &ChunkConfig::default());
    println!(
        "chunk: {} bytes, {} chunks in {:.2} s",
        text.len(),
        chunks.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(chunks.iter().all(|c| c.tokens <= 256));
}
