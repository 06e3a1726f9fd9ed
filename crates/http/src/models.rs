//! The models the server has loaded, and the engine that runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use offgrid_inference::{ChatModel, Embedder, Engine, EngineConfig, InferenceError};

/// Loaded models plus the engine. Built once at start-up.
#[derive(Debug)]
pub struct Models {
    /// Chat (GGUF) models by id.
    pub chat: BTreeMap<String, Arc<ChatModel>>,
    /// Embedding models by id.
    pub embedding: BTreeMap<String, Arc<Embedder>>,
    /// The scheduler for chat and completion requests.
    pub engine: Engine,
    /// Unix time the models were loaded (OpenAI's `created`).
    pub created: i64,
}

impl Models {
    /// Loads every model under `dir`: a folder with a `.gguf` file is a chat
    /// model, one with `model.safetensors`, `tokenizer.json` and
    /// `config.json` an embedding model; the folder name is the model id. A
    /// model that fails to load is skipped with a warning. Blocking.
    pub fn load_dir(dir: &Path, engine: EngineConfig) -> Result<Self, InferenceError> {
        let mut chat = BTreeMap::new();
        let mut embedding = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(Result::ok).collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        for entry in entries {
            let path = entry.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if id.starts_with('.') || !path.is_dir() {
                continue;
            }
            if let Some(gguf) = first_gguf(&path) {
                match ChatModel::load(&id, &gguf) {
                    Ok(m) => {
                        tracing::info!(model = %id, "loaded chat model");
                        chat.insert(id, Arc::new(m));
                    }
                    Err(e) => tracing::warn!(model = %id, error = %e, "skipping model"),
                }
            } else if path.join("model.safetensors").exists()
                && path.join("tokenizer.json").exists()
            {
                match Embedder::open(&path) {
                    Ok(m) => {
                        tracing::info!(model = %id, "loaded embedding model");
                        embedding.insert(id, Arc::new(m));
                    }
                    Err(e) => tracing::warn!(model = %id, error = %e, "skipping model"),
                }
            }
        }
        if chat.is_empty() && embedding.is_empty() {
            tracing::warn!(
                dir = %dir.display(),
                "no models installed: run `cargo xtask models` to install the default models"
            );
        }
        Ok(Models {
            chat,
            embedding,
            engine: Engine::start(engine)?,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        })
    }
}

fn first_gguf(dir: &Path) -> Option<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    files.sort();
    files.into_iter().next()
}
