//! The indexer's embedding model: the configured embedding model through
//! [`Models`], waiting its turn in the embedding line like any request
//! (under the fairness key `indexer`, so one upload's hundreds of chunks
//! take one caller's place, not the server's), a batch at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use offgrid_inference::{EmbedRequest, ModelError, Models, Requester};
use offgrid_rag::{TokenCounter, TokenizerCounter};
use offgrid_workspace::EmbeddingBackend;

/// How often the indexer looks for an embedding slot.
const POLL: Duration = Duration::from_millis(20);
/// How long it waits for one before the document fails.
const PATIENCE: Duration = Duration::from_secs(600);

/// [`EmbeddingBackend`] over the server's models.
pub(crate) struct ModelsBackend {
    pub models: Arc<Models>,
    pub model: String,
}

fn message(e: &ModelError) -> String {
    format!("the embedding model could not be used: {e}")
}

impl EmbeddingBackend for ModelsBackend {
    fn counter(&self) -> Result<Box<dyn TokenCounter + Send>, String> {
        let tokenizer = self
            .models
            .embedding_tokenizer(&self.model)
            .map_err(|e| message(&e))?;
        Ok(Box::new(TokenizerCounter::new(tokenizer)))
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let who = Requester {
            key: "indexer".to_owned(),
            guest: false,
        };
        let started = Instant::now();
        let admission = loop {
            match self.models.admit_embedding(&who) {
                Ok(a) => break a,
                Err(ModelError::EmbeddingBusy | ModelError::EmbeddingCallerBusy)
                    if started.elapsed() < PATIENCE =>
                {
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(message(&e)),
            }
        };
        let waiter = admission.join_line();
        let slot = loop {
            if let Some(slot) = waiter.try_take() {
                break slot;
            }
            if started.elapsed() > PATIENCE {
                return Err(
                    "the embedding model stayed busy for too long: upload it again later".into(),
                );
            }
            std::thread::sleep(POLL);
        };
        drop(waiter);
        let request = EmbedRequest {
            model: self.model.clone(),
            inputs: texts.iter().map(|t| (*t).to_owned()).collect(),
            keep_alive: None,
        };
        self.models
            .embed(admission, slot, request, &|| true)
            .map(|e| e.vectors)
            .map_err(|e| message(&e))
    }
}
