//! Sentence embeddings with the real all-MiniLM-L6-v2.

mod common;

use std::path::PathBuf;

use offgrid_inference::Embedder;
use offgrid_inference::embed::cosine;

fn model_dir() -> PathBuf {
    common::installed("all-minilm-l6-v2")
}

#[test]
fn paraphrases_embed_closer_than_unrelated_sentences() {
    let e = Embedder::open(&model_dir()).expect("load");
    assert_eq!(e.dimensions(), 384);
    let out = e
        .embed(&[
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly revenue grew by eight percent.",
            "How do I reset my router's password?",
        ])
        .expect("embed");
    let v = &out.vectors;
    assert_eq!(v.len(), 4);
    for x in v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length: {norm}");
    }
    let para = cosine(&v[0], &v[1]);
    assert!(para > 0.6, "paraphrase similarity {para}");
    for other in [&v[2], &v[3]] {
        assert!(
            para > cosine(&v[0], other) + 0.3,
            "paraphrase must beat unrelated"
        );
    }
    assert!(out.tokens > 20 && out.tokens < 60, "tokens {}", out.tokens);
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    let e = Embedder::open(&model_dir()).expect("load");
    let short = "Short text.";
    let long = "A much longer sentence that certainly needs more tokens than the short one does.";
    let alone = e.embed(&[short]).expect("alone").vectors.remove(0);
    let batched = e.embed(&[short, long]).expect("batched").vectors.remove(0);
    let diff: f32 = alone
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "padding changed the vector by {diff}");
}

#[test]
fn embedding_stops_before_the_next_batch_once_told_to() {
    let e = Embedder::open(&model_dir()).expect("load");
    let texts = vec!["a sentence to embed"; 200];
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let out = e
        .embed_while(&texts, &|| {
            // Go on for the first batch only.
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        })
        .expect("embed");
    assert!(out.is_none(), "stopped");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    let all = e
        .embed_while(&texts, &|| true)
        .expect("embed")
        .expect("all");
    assert_eq!(all.vectors.len(), 200);
}
