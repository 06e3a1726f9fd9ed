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
