//! Serving requests with [`Models`]: admission, then "generate for these
//! messages or this text" and "embed these inputs".
//!
//! Each request is admitted first ([`Models::admit_generation`],
//! [`Models::admit_embedding`]), before any costly work, so a caller over
//! their limit is refused at once; the admission is then spent on one
//! blocking call that loads the model if needed, renders the chat template,
//! tokenizes, checks the context length and queues the work. Generated
//! text comes back as [`Event`]s through the caller's sink.

use std::sync::Arc;

use offgrid_config::KeepAlive;

use super::{ModelError, Models};
use crate::embed::Embeddings;
use crate::engine::{Admission, Liveness, Sink};
use crate::{ChatMessage, ChatModel, Job, SamplingParams};

/// Who asks, for fair scheduling and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The fairness key: one per user, or per guest network.
    pub key: String,
    /// An anonymous guest: also counted in the share all guests have
    /// together.
    pub guest: bool,
}

/// An admitted generation request's place, spent by [`Models::generate`].
/// Dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    key: String,
    admission: Admission,
}

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Chat messages, rendered with the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Raw text, tokenized as it is.
    Text(String),
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// A chat model's id.
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling and stopping; `max_tokens` is lowered to the room the
    /// context leaves.
    pub params: SamplingParams,
    /// The `max_tokens` the client asked for, if it did: more than the
    /// context leaves is then an error rather than lowered.
    pub explicit_max: Option<usize>,
    /// How long the model stays loaded after this request (`None`: the
    /// server's default or what it was).
    pub keep_alive: Option<KeepAlive>,
    /// Chat messages that may be left out, oldest first, when the prompt
    /// does not fit the context (a stored conversation's history): never
    /// an error for their sake, the number left out is reported.
    pub trimmable: std::ops::Range<usize>,
    /// Its id on the queue board (unique; `None`: the engine names it).
    pub id: Option<String>,
    /// What the output must be (JSON, a JSON schema), enforced while
    /// sampling; `None`: free text.
    pub format: Option<crate::OutputFormat>,
}

/// A queued generation: what the caller may need beside the events.
#[derive(Debug, Clone)]
pub struct Generation {
    model: Arc<ChatModel>,
    prompt: Vec<u32>,
    truncated: usize,
}

impl Generation {
    /// How many of the trimmable messages were left out to fit the
    /// context.
    pub fn truncated_messages(&self) -> usize {
        self.truncated
    }

    /// The prompt's token ids.
    pub fn prompt_tokens(&self) -> &[u32] {
        &self.prompt
    }

    /// The text of one token (for log-probabilities); empty if the id is
    /// not the model's.
    pub fn token_text(&self, id: u32) -> String {
        self.model.tokenizer.decode(&[id]).unwrap_or_default()
    }
}

/// One embedding request.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// An embedding model's id.
    pub model: String,
    /// The texts, one vector each.
    pub inputs: Vec<String>,
    /// How long the model stays loaded after this request.
    pub keep_alive: Option<KeepAlive>,
}

impl Models {
    /// Takes the caller's place for one generation request before any
    /// costly work is done for it: `Engine(UserBusy)` when they are at
    /// their limit, `GuestsBusy` when guests together are.
    pub fn admit_generation(&self, who: &Requester) -> Result<Ticket, ModelError> {
        let mut admission = self.engine.admit(&who.key)?;
        if who.guest {
            let share = self
                .guests
                .generation
                .try_admit("all")
                .ok_or(ModelError::GuestsBusy)?;
            admission = admission.with(share);
        }
        Ok(Ticket {
            key: who.key.clone(),
            admission,
        })
    }

    /// Loads the model if needed, renders and tokenizes the prompt, checks
    /// it against the context length and queues it. Events go to `sink`
    /// (which returns `false` once nobody listens); `alive` is asked
    /// before every step, queued or prefilling included. Blocking.
    pub fn generate(
        &self,
        ticket: Ticket,
        request: GenerateRequest,
        sink: Sink,
        alive: Option<Liveness>,
    ) -> Result<Generation, ModelError> {
        let GenerateRequest {
            model,
            prompt,
            mut params,
            explicit_max,
            keep_alive,
            trimmable,
            id,
            format,
        } = request;
        // A client gone while this request waited for a blocking thread
        // costs no model load.
        if alive.as_ref().is_some_and(|a| !a()) {
            return Err(ModelError::ClientLeft);
        }
        // A schema refused by its shape costs no model load.
        if let Some(format) = &format {
            format.check().map_err(format_error)?;
        }
        let model = self.chat(&model, keep_alive)?;
        let constraint = match &format {
            Some(format) => Some(model.constraint(format).map_err(format_error)?),
            None => None,
        };
        let (ids, truncated) = match prompt {
            Prompt::Chat(messages) => {
                let wanted =
                    explicit_max.unwrap_or(params.max_tokens.min(model.context_length() / 4));
                fit_messages(&model, &messages, trimmable, wanted)?
            }
            Prompt::Text(text) => (encode(&model, &text)?, 0),
        };
        // The key/value cache budget bounds a generation like the context
        // does: one that could never fit it is refused (or, without an
        // explicit max_tokens, given less room) instead of waiting forever.
        let layout = model.model().kv_layout();
        let budget_positions = self.engine.kv_budget().limit().map_or(usize::MAX, |bytes| {
            bytes / layout.block_bytes().max(1) * crate::kv::BLOCK_POSITIONS
        });
        params.max_tokens = fit_context(
            ids.len(),
            model.context_length().min(budget_positions),
            params.max_tokens,
            explicit_max,
        )?;
        let generation = Generation {
            model: model.clone(),
            prompt: ids.clone(),
            truncated,
        };
        let mut job = Job::new(ticket.key, model, ids, params, sink);
        if let Some(alive) = alive {
            job = job.with_liveness(alive);
        }
        if let Some(id) = id {
            job = job.with_id(id);
        }
        if let Some(constraint) = constraint {
            job = job.with_constraint(constraint);
        }
        self.engine.submit_admitted(job, ticket.admission)?;
        Ok(generation)
    }

    /// Every generation queued or running, oldest first.
    pub fn queue(&self) -> Vec<crate::JobInfo> {
        self.engine.board().list()
    }

    /// Cancels a queued or running generation: it ends before its next
    /// step with the `cancelled` finish reason. `false` if it is not there.
    pub fn cancel(&self, id: &str) -> bool {
        self.engine.board().cancel(id)
    }

    /// The tokenizer of the embedding model `id` (loading it if needed),
    /// to cut texts into pieces the model reads whole. Blocking.
    pub fn embedding_tokenizer(&self, id: &str) -> Result<tokenizers::Tokenizer, ModelError> {
        Ok(self.embedder(id, None)?.tokenizer().clone())
    }

    /// Takes the caller's place for one embedding request:
    /// `EmbeddingCallerBusy`, `EmbeddingBusy` or `GuestsBusy` when full.
    pub fn admit_embedding(
        &self,
        who: &Requester,
    ) -> Result<super::EmbeddingAdmission, ModelError> {
        let admission = self.embeddings.admit(&who.key).map_err(|r| match r {
            super::EmbeddingRefusal::CallerBusy => ModelError::EmbeddingCallerBusy,
            super::EmbeddingRefusal::ServerBusy => ModelError::EmbeddingBusy,
        })?;
        if !who.guest {
            return Ok(admission);
        }
        let share = self
            .guests
            .embeddings
            .try_admit("all")
            .ok_or(ModelError::GuestsBusy)?;
        Ok(admission.with(share))
    }

    /// Loads the model if needed and embeds, asking `alive` before the
    /// load and each batch (`ClientLeft` once it says no). The caller has
    /// waited for `slot` in the admission's line
    /// ([`EmbeddingAdmission::join_line`](super::EmbeddingAdmission::join_line)).
    /// Blocking; the admission and the slot are held until the batch in
    /// progress is done.
    pub fn embed(
        &self,
        admission: super::EmbeddingAdmission,
        slot: super::gate::Slot,
        request: EmbedRequest,
        alive: &dyn Fn() -> bool,
    ) -> Result<Embeddings, ModelError> {
        let _held = (admission, slot);
        if !alive() {
            return Err(ModelError::ClientLeft);
        }
        let embedder = self.embedder(&request.model, request.keep_alive)?;
        let refs: Vec<&str> = request.inputs.iter().map(String::as_str).collect();
        embedder
            .embed_while(&refs, alive)
            .map_err(ModelError::Embedding)?
            .ok_or(ModelError::ClientLeft)
    }
}

/// A refused output format is the client's error; anything else is ours.
fn format_error(e: crate::InferenceError) -> ModelError {
    match e {
        crate::InferenceError::Format(message) => ModelError::InvalidFormat(message),
        other => ModelError::Inference(other),
    }
}

fn encode(model: &ChatModel, text: &str) -> Result<Vec<u32>, ModelError> {
    model
        .tokenizer
        .encode(text)
        .map_err(|e| ModelError::InvalidPrompt(e.to_string()))
}

fn render(model: &ChatModel, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
    let text = model
        .template
        .render(messages, true)
        .map_err(|e| ModelError::InvalidPrompt(e.to_string()))?;
    encode(model, &text)
}

/// The prompt's tokens with as few of the `trimmable` messages left out
/// (oldest first, whole turns: a cut is only made before a user message or
/// at the range's end) as it takes for the prompt and `wanted` answer
/// tokens to fit the context, and how many were left out. Binary search
/// over the cuts: a few renders however long the history.
fn fit_messages(
    model: &ChatModel,
    messages: &[ChatMessage],
    trimmable: std::ops::Range<usize>,
    wanted: usize,
) -> Result<(Vec<u32>, usize), ModelError> {
    let full = render(model, messages)?;
    let context = model.context_length();
    let fits = |ids: &[u32]| ids.len().saturating_add(wanted) <= context;
    let end = trimmable.end.min(messages.len());
    let start = trimmable.start.min(end);
    if fits(&full) || start == end {
        return Ok((full, 0));
    }
    // Where the kept history may begin: before a user message, or nothing
    // of it kept. Ascending, so fewer kept further on.
    let mut cuts: Vec<usize> = (start + 1..end)
        .filter(|&i| messages[i].role == "user")
        .collect();
    cuts.push(end);
    let without = |cut: usize| -> Vec<ChatMessage> {
        let mut kept = messages[..start].to_vec();
        kept.extend_from_slice(&messages[cut..]);
        kept
    };
    // The first cut that fits; the last one (no history) if none does.
    let (mut lo, mut hi) = (0, cuts.len() - 1);
    let mut best = None;
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        let ids = render(model, &without(cuts[mid]))?;
        if fits(&ids) {
            best = Some((ids, cuts[mid]));
            if mid == 0 {
                break;
            }
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    let (ids, cut) = match best {
        Some(found) => found,
        None => (render(model, &without(end))?, end),
    };
    Ok((ids, cut - start))
}

/// The `max_tokens` a prompt of `prompt` tokens may generate in a context
/// of `context`: `max_tokens` lowered to the room left, unless the client
/// asked for more than that room explicitly.
pub fn fit_context(
    prompt: usize,
    context: usize,
    max_tokens: usize,
    explicit_max: Option<usize>,
) -> Result<usize, ModelError> {
    if prompt == 0 {
        return Err(ModelError::EmptyPrompt);
    }
    if prompt >= context {
        return Err(ModelError::ContextExceeded { context, prompt });
    }
    let room = context - prompt;
    if let Some(max) = explicit_max.filter(|m| *m > room) {
        return Err(ModelError::MaxTokensExceedContext {
            max,
            prompt,
            context,
        });
    }
    Ok(max_tokens.min(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_bounds_prompt_and_answer() {
        assert!(matches!(
            fit_context(0, 100, 10, None),
            Err(ModelError::EmptyPrompt)
        ));
        assert!(matches!(
            fit_context(100, 100, 10, None),
            Err(ModelError::ContextExceeded {
                context: 100,
                prompt: 100
            })
        ));
        assert_eq!(fit_context(90, 100, 512, None).ok(), Some(10));
        assert_eq!(fit_context(90, 100, 5, Some(5)).ok(), Some(5));
        assert!(matches!(
            fit_context(90, 100, 11, Some(11)),
            Err(ModelError::MaxTokensExceedContext { max: 11, .. })
        ));
        assert_eq!(
            fit_context(1, usize::MAX, usize::MAX, None).ok(),
            Some(usize::MAX - 1)
        );
    }
}
