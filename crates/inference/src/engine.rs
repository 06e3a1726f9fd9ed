//! The inference engine: one scheduler thread that interleaves decoding
//! steps of several sequences, fairly across users.
//!
//! - Requests wait in per-user queues; a free slot goes to the user with the
//!   fewest running sequences, ties broken round-robin, so one user's twenty
//!   requests cannot starve another user's one.
//! - Running sequences advance one step each in turn (a prefill chunk or one
//!   token), so a long generation never holds the others behind it.
//! - The queue is bounded: `submit` answers [`EngineError::Busy`] when full.
//! - Each request streams [`Event`]s to its own sink; when the sink reports
//!   the client is gone, the sequence is dropped before its next step.
//!
//! The engine never runs on an async executor: it owns its thread, and
//! sinks are plain callbacks (the HTTP layer forwards into a channel).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::generate::{FinishReason, SamplingParams, Sequence, Step, stop_token_ids};
use crate::model::LlamaModel;
use crate::{ChatTemplate, GgufFile, InferenceError, TextTokenizer};

/// A chat model loaded in memory, shareable between requests.
pub struct ChatModel {
    /// The model id clients use.
    pub id: String,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
    /// Its chat template.
    pub template: ChatTemplate,
    base: LlamaModel,
    stop_ids: Vec<u32>,
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ChatModel {
    /// Opens and loads a GGUF chat model.
    pub fn load(id: &str, path: &std::path::Path) -> Result<Self, InferenceError> {
        let file = GgufFile::open(path)?;
        let (tokenizer, template) = Self::check(&file)?;
        let stop_ids = stop_token_ids(&tokenizer);
        let base = LlamaModel::load(file)?;
        Ok(ChatModel {
            id: id.to_owned(),
            tokenizer,
            template,
            base,
            stop_ids,
        })
    }

    /// Checks, without reading any weight, that an opened GGUF file is a
    /// chat model we can run: a supported architecture, a tokenizer that
    /// builds from its metadata and a chat template that compiles. Returns
    /// the tokenizer and template.
    pub fn check(file: &GgufFile) -> Result<(TextTokenizer, ChatTemplate), InferenceError> {
        LlamaModel::check_architecture(file)?;
        let tokenizer = TextTokenizer::from_gguf(file.content())?;
        let bos = tokenizer
            .bos_id()
            .and_then(|i| tokenizer.token(i))
            .unwrap_or_default();
        let eos = tokenizer
            .eos_id()
            .and_then(|i| tokenizer.token(i))
            .unwrap_or_default();
        let template = ChatTemplate::new(file.metadata_str("tokenizer.chat_template"), &bos, &eos)?;
        Ok((tokenizer, template))
    }

    /// The loaded weights (fork it for a sequence of your own).
    pub fn model(&self) -> &LlamaModel {
        &self.base
    }

    /// Context length in tokens.
    pub fn context_length(&self) -> usize {
        use crate::CausalLm;
        self.base.context_length()
    }

    fn sequence(
        &self,
        prompt: Vec<u32>,
        params: SamplingParams,
    ) -> Result<Sequence, InferenceError> {
        Sequence::new(
            Box::new(self.base.fork()),
            prompt,
            params,
            self.stop_ids.clone(),
        )
    }
}

/// What a request receives, in order: `Text`* then exactly one of `Done`
/// or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Newly generated text (may be empty while a character is incomplete).
    Text(String),
    /// The log-probability of the token just generated (only when the
    /// request asked for log-probabilities); sent before that step's text.
    Logprob(crate::generate::TokenLogprob),
    /// Log-probabilities of prompt tokens (when the request scores its
    /// prompt), in prompt order, starting at the second token.
    PromptLogprobs(Vec<crate::generate::TokenLogprob>),
    /// Finished.
    Done(Usage),
    /// Failed.
    Error(String),
}

/// Token counts and timing of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// From submission to the first generated token.
    pub time_to_first_token: Option<Duration>,
    /// From submission to the end.
    pub duration: Duration,
}

/// Receives a request's events; returns `false` when the client is gone.
pub type Sink = Box<dyn FnMut(Event) -> bool + Send>;

/// One generation request.
pub struct Job {
    /// Who asked (fairness is per user).
    pub user: String,
    /// The loaded model.
    pub model: Arc<ChatModel>,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Sampling and stopping.
    pub params: SamplingParams,
    /// Where events go.
    pub sink: Sink,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The queue is full; retry later.
    #[error("the server is busy: {queued} requests are waiting; try again shortly")]
    Busy {
        /// Requests waiting.
        queued: usize,
    },
    /// The engine thread is gone.
    #[error("the inference engine has stopped")]
    Stopped,
}

/// Scheduler limits.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Sequences decoding at once.
    pub max_active: usize,
    /// Requests waiting beyond those.
    pub max_queued: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_active: 4,
            max_queued: 64,
        }
    }
}

/// Handle to the engine thread. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<(Job, Instant)>,
    queued: Arc<AtomicUsize>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Running {
    user: String,
    model: Arc<ChatModel>,
    seq: Sequence,
    sink: Sink,
    submitted: Instant,
    first_token: Option<Duration>,
}

impl Engine {
    /// Starts the scheduler thread.
    pub fn start(config: EngineConfig) -> Result<Self, InferenceError> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        std::thread::Builder::new()
            .name("offgrid-engine".into())
            .spawn(move || schedule(rx, counter, config))
            .map_err(|e| InferenceError::Candle(format!("cannot start engine thread: {e}")))?;
        Ok(Engine { tx, queued, config })
    }

    /// Queues a request; `Busy` when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), EngineError> {
        let waiting = self.queued.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.config.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Busy { queued: waiting });
        }
        self.tx.send((job, Instant::now())).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            EngineError::Stopped
        })
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

fn schedule(rx: mpsc::Receiver<(Job, Instant)>, queued: Arc<AtomicUsize>, config: EngineConfig) {
    let mut waiting: HashMap<String, VecDeque<(Job, Instant)>> = HashMap::new();
    let mut order: VecDeque<String> = VecDeque::new();
    let mut running: Vec<Running> = Vec::new();
    loop {
        // Take new requests: block only when there is nothing to do.
        let mut incoming = Vec::new();
        if running.is_empty() && waiting.values().all(VecDeque::is_empty) {
            match rx.recv() {
                Ok(job) => incoming.push(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            incoming.push(job);
        }
        for (job, at) in incoming {
            if !order.contains(&job.user) {
                // A user not served yet goes first among equals.
                order.push_front(job.user.clone());
            }
            waiting
                .entry(job.user.clone())
                .or_default()
                .push_back((job, at));
        }

        // Fill free slots: fewest running first, round-robin among equals.
        while running.len() < config.max_active.max(1) {
            let candidates: Vec<&String> = order
                .iter()
                .filter(|u| waiting.get(*u).is_some_and(|q| !q.is_empty()))
                .collect();
            let Some(user) = candidates
                .iter()
                .min_by_key(|u| running.iter().filter(|r| &&r.user == *u).count())
                .map(|u| (*u).clone())
            else {
                break;
            };
            if let Some(pos) = order.iter().position(|u| *u == user) {
                order.remove(pos);
                order.push_back(user.clone());
            }
            let Some((mut job, submitted)) = waiting.get_mut(&user).and_then(VecDeque::pop_front)
            else {
                break;
            };
            queued.fetch_sub(1, Ordering::AcqRel);
            match job
                .model
                .sequence(std::mem::take(&mut job.prompt), job.params.clone())
            {
                Ok(seq) => running.push(Running {
                    user,
                    model: job.model,
                    seq,
                    sink: job.sink,
                    submitted,
                    first_token: None,
                }),
                Err(e) => {
                    (job.sink)(Event::Error(e.to_string()));
                }
            }
        }

        // One step for each running sequence, in turn.
        let mut i = 0;
        while i < running.len() {
            let r = &mut running[i];
            let outcome = r.seq.step(&r.model.tokenizer);
            let mut alive = true;
            let scored = r.seq.take_prompt_logprobs();
            if !scored.is_empty() {
                alive = (r.sink)(Event::PromptLogprobs(scored));
            }
            if let Some(lp) = r.seq.take_logprob().filter(|_| alive) {
                alive = (r.sink)(Event::Logprob(lp));
            }
            let keep = alive
                && match outcome {
                    Ok(Step::Prefill) => true,
                    Ok(Step::Token { text, .. }) => {
                        r.first_token.get_or_insert_with(|| r.submitted.elapsed());
                        (r.sink)(Event::Text(text))
                    }
                    Ok(Step::Done { reason, text }) => {
                        if r.seq.completion_tokens() > 0 {
                            r.first_token.get_or_insert_with(|| r.submitted.elapsed());
                        }
                        if !text.is_empty() {
                            (r.sink)(Event::Text(text));
                        }
                        (r.sink)(Event::Done(Usage {
                            finish_reason: reason,
                            prompt_tokens: r.seq.prompt_tokens(),
                            completion_tokens: r.seq.completion_tokens(),
                            time_to_first_token: r.first_token,
                            duration: r.submitted.elapsed(),
                        }));
                        false
                    }
                    Err(e) => {
                        (r.sink)(Event::Error(e.to_string()));
                        false
                    }
                };
            if keep {
                i += 1;
            } else {
                running.swap_remove(i);
            }
        }
    }
}
