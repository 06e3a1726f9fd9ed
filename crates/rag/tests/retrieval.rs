//! Retrieval quality end to end with the real all-MiniLM-L6-v2: the small
//! corpus in `tests/data/rag/corpus` (ten short original documents on
//! distinct topics, some sharing vocabulary on purpose) is chunked with
//! [`offgrid_rag::chunk`] and the model's own tokenizer, every chunk is
//! embedded, and each paraphrased question of `tests/data/rag/questions.json`
//! must find a chunk of its expected document as the top hit of
//! [`offgrid_rag::search_slice`]. The mean top-1 score and the mean margin
//! over the best chunk of any other document must also stay above floors,
//! so a model, pooling or chunking regression that still ranks right by
//! luck but no longer separates the topics is caught.
//!
//! The model comes from the models directory (`$OFFGRID_MODELS_DIR`, else
//! `$OFFGRID_HOME/models`, else `~/.offgrid-llm/models`; `cargo xtask
//! models` installs it). Run with `--nocapture` to see every question's
//! scores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use offgrid_inference::Embedder;
use offgrid_rag::{ChunkConfig, TokenizerCounter, chunk, search_slice};
use tokenizers::Tokenizer;

/// The floor for the mean cosine similarity of a question and its top hit.
/// Observed with these 30 questions: 0.456 (the lowest single one 0.24);
/// text on another topic scores about 0.0 to 0.2 with this model.
const MIN_MEAN_TOP_SCORE: f32 = 0.40;

/// The floor for the mean margin between the best chunk of the expected
/// document and the best chunk of any other document. Observed: 0.251
/// (the smallest single one 0.089).
const MIN_MEAN_MARGIN: f32 = 0.15;

fn models_dir() -> PathBuf {
    std::env::var_os("OFFGRID_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("OFFGRID_HOME").map(|h| PathBuf::from(h).join("models")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".offgrid-llm/models")))
        .expect("HOME or OFFGRID_HOME")
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/rag")
}

/// One chunk of the corpus and the document it came from.
struct CorpusChunk {
    document: String,
    text: String,
}

/// Every `.md` and `.txt` file of the corpus, by file name, sorted.
fn read_corpus(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "md" || ext == "txt")
        })
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, text)
        })
        .collect()
}

/// `(question, expected document)` pairs.
fn read_questions(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("questions.json is JSON");
    json.as_array()
        .expect("questions.json is an array")
        .iter()
        .map(|q| {
            let field = |name: &str| {
                q.get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_else(|| panic!("{q}: no string {name:?}"))
                    .to_owned()
            };
            (field("question"), field("document"))
        })
        .collect()
}

#[test]
fn paraphrased_questions_find_their_document_first() {
    let models = models_dir();
    let model_dir = models.join("all-minilm-l6-v2");
    let tokenizer_path = model_dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tokenizer_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `cargo xtask models`",
            tokenizer_path.display()
        )
    });
    let counter = TokenizerCounter::new(tokenizer);
    let embedder = Embedder::open(&model_dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask models`", model_dir.display()));

    let data = data_dir();
    let corpus = read_corpus(&data.join("corpus"));
    let questions = read_questions(&data.join("questions.json"));
    assert!(
        (8..=10).contains(&corpus.len()),
        "8 to 10 documents: {:?}",
        corpus.keys()
    );
    assert!(questions.len() >= 20, "{} questions", questions.len());
    for (question, document) in &questions {
        assert!(
            corpus.contains_key(document),
            "{question:?} expects {document:?}, not in the corpus"
        );
    }
    for document in corpus.keys() {
        let asked = questions.iter().filter(|(_, d)| d == document).count();
        assert!(asked >= 2, "{document}: {asked} questions, want at least 2");
    }

    let config = ChunkConfig::default();
    let chunks: Vec<CorpusChunk> = corpus
        .iter()
        .flat_map(|(document, text)| {
            chunk(text, &counter, &config)
                .into_iter()
                .map(|c| CorpusChunk {
                    document: document.clone(),
                    text: c.text,
                })
        })
        .collect();
    assert!(chunks.len() > corpus.len(), "documents span several chunks");

    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    let chunk_vectors = embedder.embed(&texts).expect("embed the chunks").vectors;
    let dim = embedder.dimensions();
    let matrix: Vec<f32> = chunk_vectors.concat();
    assert_eq!(matrix.len(), chunks.len() * dim);

    let question_texts: Vec<&str> = questions.iter().map(|(q, _)| q.as_str()).collect();
    let question_vectors = embedder
        .embed(&question_texts)
        .expect("embed the questions")
        .vectors;

    let mut misses = String::new();
    let mut top_scores = Vec::with_capacity(questions.len());
    let mut margins = Vec::with_capacity(questions.len());
    for ((question, expected), vector) in questions.iter().zip(&question_vectors) {
        let ranked = search_slice(vector, &matrix, chunks.len(), f32::NEG_INFINITY);
        let &(top_row, top_score) = ranked.first().expect("a non-empty corpus ranks something");
        let top_document = &chunks[top_row].document;
        // The best chunk of the expected document, and of any other.
        let best = |wanted: bool| {
            ranked
                .iter()
                .find(|(row, _)| (chunks[*row].document == *expected) == wanted)
                .map_or(("none", f32::NEG_INFINITY), |&(row, score)| {
                    (chunks[row].document.as_str(), score)
                })
        };
        let ((_, expected_score), (other_document, other_score)) = (best(true), best(false));
        let margin = expected_score - other_score;
        println!(
            "{top_score:.3} margin {margin:+.3} over {other_document:<26} {question}{}",
            if top_document == expected {
                String::new()
            } else {
                format!("  [MISS: expected {expected}]")
            }
        );
        if top_document != expected {
            let _ = writeln!(
                misses,
                "  {question:?}: top hit {top_document} ({top_score:.3}), \
                 best of {expected} {expected_score:.3}"
            );
        }
        top_scores.push(top_score);
        margins.push(margin);
    }

    let n = top_scores.len() as f32;
    let mean_top = top_scores.iter().sum::<f32>() / n;
    let min_top = top_scores.iter().copied().fold(f32::INFINITY, f32::min);
    let min_margin = margins.iter().copied().fold(f32::INFINITY, f32::min);
    let mean_margin = margins.iter().sum::<f32>() / n;
    let missed = misses.lines().count();
    println!(
        "{} chunks from {} documents; {} questions, top-1 {}/{}; \
         top-1 score mean {mean_top:.3} min {min_top:.3}; \
         margin over other documents mean {mean_margin:.3} min {min_margin:.3}",
        chunks.len(),
        corpus.len(),
        questions.len(),
        questions.len() - missed,
        questions.len(),
    );
    assert!(
        misses.is_empty(),
        "{missed} of {} questions missed their document:\n{misses}",
        questions.len()
    );
    assert!(
        mean_top > MIN_MEAN_TOP_SCORE,
        "mean top-1 score {mean_top:.3} is not above {MIN_MEAN_TOP_SCORE}"
    );
    assert!(
        mean_margin > MIN_MEAN_MARGIN,
        "mean margin over other documents {mean_margin:.3} is not above {MIN_MEAN_MARGIN}"
    );
}
