//! The inference engine: one scheduler thread that runs continuous
//! batching, fairly across users.
//!
//! - Requests wait in per-user queues; a free slot goes to the user with the
//!   fewest running sequences, ties broken round-robin, so one user's twenty
//!   requests cannot starve another user's one.
//! - Each engine step is one batched forward pass per model: one token for
//!   every decoding sequence, plus prompt chunks of the sequences still
//!   reading their prompt, under a per-step token budget
//!   ([`EngineConfig::step_tokens`]; while others decode, a chunk sized so
//!   the step stays within `decode_slowdown` times the decodes' own, from
//!   step times learned by rows and attended positions (`pace`): a long
//!   prompt never stalls the running streams. With SmolLM2 on two cores
//!   a prompt row at 2,000 positions costs about as much as a decode
//!   step, see `examples/step_cost.rs`).
//!   Sequences join and leave the batch at any step.
//! - Key/value cache memory is bounded by a budget
//!   ([`EngineConfig::kv_cache_bytes`]): a request starts only when its
//!   prompt and `max_tokens` fit; until then it waits, and the board says
//!   so.
//! - The queue is bounded: `submit` answers [`EngineError::Busy`] when full.
//! - Each request streams [`Event`]s to its own sink; when the sink reports
//!   the client is gone, the sequence is dropped before its next step.
//!
//! The engine never runs on an async executor: it owns its thread, and
//! sinks are plain callbacks (the HTTP layer forwards into a channel).

use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

mod pace;

use crate::board::Board;
use crate::generate::{FinishReason, SamplingParams, Sequence, Step, stop_token_ids};
use crate::kv::{KvBudget, KvSeq};
use crate::limits::{Admitted, PerKeyLimit};
use crate::model::LlamaModel;
use crate::transformer::BatchItem;
use crate::{ChatTemplate, GgufFile, InferenceError, TextTokenizer};
use pace::{Limits, Pace, Want, plan, shape_of};

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
    /// Indexed on the first constrained request.
    grammars: std::sync::OnceLock<Result<crate::Grammars, String>>,
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
            grammars: std::sync::OnceLock::new(),
        })
    }

    /// A constraint holding one generation's output to `format` (the
    /// vocabulary is indexed on the first call). Blocking: compiling a
    /// schema may take milliseconds.
    pub fn constraint(
        &self,
        format: &crate::OutputFormat,
    ) -> Result<crate::Constraint, InferenceError> {
        let grammars = self
            .grammars
            .get_or_init(|| {
                crate::Grammars::new(&self.tokenizer, &self.stop_ids).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| InferenceError::Constraint(e.clone()))?;
        grammars.constraint(format)
    }

    /// The same model serving at most `max` tokens of context.
    pub fn with_context_limit(mut self, max: usize) -> Self {
        self.base.limit_context(max);
        self
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

    /// Positions a request's cache may need: its prompt and every token
    /// it may generate, within the context.
    fn positions_needed(&self, prompt: usize, params: &SamplingParams) -> usize {
        prompt
            .saturating_add(params.max_tokens)
            .min(self.context_length())
    }

    fn sequence(
        &self,
        kv: KvSeq,
        prompt: Vec<u32>,
        params: SamplingParams,
        constraint: Option<crate::Constraint>,
    ) -> Result<Sequence, InferenceError> {
        use crate::CausalLm;
        let seq = Sequence::with_cache(
            kv,
            self.base.context_length(),
            prompt,
            params,
            self.stop_ids.clone(),
        )?;
        Ok(match constraint {
            Some(constraint) => seq.constrained(constraint),
            None => seq,
        })
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
    /// From submission to its first step (waiting in the queue, or for
    /// room in the key/value cache). The prompt is read from then until
    /// the first token.
    pub queued: Duration,
}

/// Receives a request's events; returns `false` when the client is gone.
pub type Sink = Box<dyn FnMut(Event) -> bool + Send>;

/// Tells whether a request's client is still there, between events (while
/// the request waits in the queue or its prompt is being read).
pub type Liveness = Box<dyn Fn() -> bool + Send>;

/// One generation request.
pub struct Job {
    /// Who asked (fairness and per-user limits are per this key).
    pub user: String,
    /// The loaded model.
    pub model: Arc<ChatModel>,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Sampling and stopping.
    pub params: SamplingParams,
    /// Where events go.
    pub sink: Sink,
    /// Whether the client is still there; `None`: only the sink tells.
    pub alive: Option<Liveness>,
    /// Its id on the queue board (`None`: the engine names it `gen-N`).
    pub id: Option<String>,
    /// The grammar its output is held to, if any.
    pub constraint: Option<crate::Constraint>,
}

impl Job {
    /// A request whose client is known to be gone only when its sink says
    /// so (see [`Job::with_liveness`]).
    pub fn new(
        user: impl Into<String>,
        model: Arc<ChatModel>,
        prompt: Vec<u32>,
        params: SamplingParams,
        sink: Sink,
    ) -> Self {
        Job {
            user: user.into(),
            model,
            prompt,
            params,
            sink,
            alive: None,
            id: None,
            constraint: None,
        }
    }

    /// Holds the output to a grammar (see [`ChatModel::constraint`]).
    pub fn with_constraint(mut self, constraint: crate::Constraint) -> Self {
        self.constraint = Some(constraint);
        self
    }

    /// Names the request on the queue board (unique; e.g. the completion
    /// id the client sees).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Checks `alive` before each step (queued requests and prompt chunks
    /// included), so a client that left stops costing work at once.
    pub fn with_liveness(mut self, alive: Liveness) -> Self {
        self.alive = Some(alive);
        self
    }

    fn is_alive(&self) -> bool {
        self.alive.as_ref().is_none_or(|f| f())
    }
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
    /// This user already has as many requests queued or running as one
    /// user may.
    #[error("too many requests in progress: at most {limit} at once; wait for one to finish")]
    UserBusy {
        /// The per-user limit.
        limit: usize,
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
    /// Requests waiting beyond those, all users together.
    pub max_queued: usize,
    /// Requests one user (one fairness key) may have queued or running.
    pub max_per_user: usize,
    /// Sequences one user may have decoding at once, so a slot stays free
    /// for someone else.
    pub max_running_per_user: usize,
    /// Tokens one step feeds at most, all sequences together (each
    /// decoding sequence counts one; prompt chunks share the rest).
    pub step_tokens: usize,
    /// The longest prompt chunk a step feeds while other sequences are
    /// decoding. Within it, the scheduler sizes chunks from learned step
    /// times (by rows and attended cache positions, see `engine/pace.rs`)
    /// so that a step with prompt rows takes at most `decode_slowdown`
    /// times a step of the same decodes alone: that bounds the time
    /// between two tokens of a running stream while someone else's long
    /// prompt is read.
    pub prefill_chunk_while_decoding: usize,
    /// How much slower than decoding alone a step that also reads prompt
    /// rows may be (see `prefill_chunk_while_decoding`).
    pub decode_slowdown: f64,
    /// Bytes of key/value cache all running sequences may reserve.
    pub kv_cache_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_active: 8,
            max_queued: 64,
            max_per_user: 8,
            max_running_per_user: 3,
            step_tokens: 128,
            prefill_chunk_while_decoding: 16,
            decode_slowdown: 2.0,
            kv_cache_bytes: default_kv_cache_bytes(),
        }
    }
}

/// The default key/value cache budget: a quarter of the machine's memory,
/// between 256 MiB and 4 GiB (SmolLM2-135M takes 22.5 KiB per position in
/// f16: 4 GiB hold eight sequences of its 8,192-token context with room
/// to spare, 256 MiB about 11,600 positions).
pub fn default_kv_cache_bytes() -> usize {
    const MIB: usize = 1 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(4096 * MIB, |kb| kb.saturating_mul(1024));
    (total / 4).clamp(256 * MIB, 4096 * MIB)
}

/// A request's place in its user's allowance, taken before the costly work
/// of preparing it (loading the model, rendering, tokenizing) and held
/// until the request ends. Other limits (a group's share, say) can ride
/// along with [`Admission::with`].
#[derive(Debug)]
pub struct Admission {
    _tickets: Vec<Admitted>,
}

impl Admission {
    /// Also holds `ticket` for as long as the request lives.
    pub fn with(mut self, ticket: Admitted) -> Self {
        self._tickets.push(ticket);
        self
    }
}

struct Queued {
    job: Job,
    /// Set through the board to cancel it.
    cancel: Arc<AtomicBool>,
    submitted: Instant,
    _ticket: Admission,
}

impl Queued {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

/// Handle to the engine thread. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Queued>,
    queued: Arc<AtomicUsize>,
    kv: KvBudget,
    per_user: PerKeyLimit,
    config: EngineConfig,
    board: Board,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Running {
    id: String,
    cancel: Arc<AtomicBool>,
    user: String,
    model: Arc<ChatModel>,
    seq: Sequence,
    sink: Sink,
    alive: Option<Liveness>,
    submitted: Instant,
    /// How long it waited before it started.
    queued: Duration,
    first_token: Option<Duration>,
    _ticket: Admission,
}

/// The message a client sees when its request hit a bug in the engine.
const INTERNAL: &str = "internal error while generating; the server log has details";

impl Engine {
    /// Starts the scheduler thread. The thread survives panics: one inside a
    /// request's step fails that request only; one anywhere else fails the
    /// requests in flight, is logged, and scheduling goes on.
    pub fn start(config: EngineConfig) -> Result<Self, InferenceError> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        let board = Board::default();
        let shown = board.clone();
        let kv = KvBudget::new(config.kv_cache_bytes);
        let budget = kv.clone();
        std::thread::Builder::new()
            .name("offgrid-engine".into())
            .spawn(move || supervise(&rx, &counter, config, &shown, &budget))
            .map_err(|e| InferenceError::Candle(format!("cannot start engine thread: {e}")))?;
        Ok(Engine {
            tx,
            queued,
            kv,
            per_user: PerKeyLimit::new(config.max_per_user),
            config,
            board,
            next_id: Arc::default(),
        })
    }

    /// Queues a request: `UserBusy` when its user is at their limit, `Busy`
    /// when the shared queue is full.
    pub fn submit(&self, job: Job) -> Result<(), EngineError> {
        let admission = self.admit(&job.user)?;
        self.submit_admitted(job, admission)
    }

    /// Takes one of `user`'s places before their request is prepared;
    /// `UserBusy` when they are at their limit.
    pub fn admit(&self, user: &str) -> Result<Admission, EngineError> {
        let ticket = self.per_user.try_admit(user).ok_or(EngineError::UserBusy {
            limit: self.per_user.max(),
        })?;
        Ok(Admission {
            _tickets: vec![ticket],
        })
    }

    /// Queues a request admitted with [`Engine::admit`]; `Busy` when the
    /// shared queue is full.
    pub fn submit_admitted(&self, mut job: Job, admission: Admission) -> Result<(), EngineError> {
        let waiting = self.queued.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.config.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Busy { queued: waiting });
        }
        let id = match job.id.take() {
            Some(id) => id,
            None => format!("gen-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        let cancel = self.board.add(&id, &job.user, &job.model.id);
        job.id = Some(id.clone());
        let queued = Queued {
            job,
            cancel,
            submitted: Instant::now(),
            _ticket: admission,
        };
        self.tx.send(queued).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.board.remove(&id);
            EngineError::Stopped
        })
    }

    /// The queue board: what is queued and running, and cancellation.
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The key/value cache budget, with what is reserved and allocated.
    pub fn kv_budget(&self) -> &KvBudget {
        &self.kv
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Users with requests queued or running (the size of the per-user
    /// bookkeeping, which never keeps users without work).
    pub fn users_in_flight(&self) -> usize {
        self.per_user.keys()
    }
}

/// The scheduler's state: kept outside the unwinding scope so a panic
/// loses no request silently.
#[derive(Default)]
struct Scheduler {
    waiting: HashMap<String, VecDeque<Queued>>,
    /// Users with waiting requests, in round-robin order.
    order: VecDeque<String>,
    running: Vec<Running>,
    /// Step times, for sizing prompt chunks.
    pace: Pace,
    /// What clients see of the above.
    board: Board,
}

/// The `Done` of a request cancelled through the board (`queued`: how
/// long it waited before it started; all of its time if it never did).
fn cancelled(
    prompt_tokens: usize,
    completion_tokens: usize,
    submitted: Instant,
    queued: Option<Duration>,
) -> Event {
    let duration = submitted.elapsed();
    Event::Done(Usage {
        finish_reason: FinishReason::Cancelled,
        prompt_tokens,
        completion_tokens,
        time_to_first_token: None,
        duration,
        queued: queued.unwrap_or(duration),
    })
}

impl Scheduler {
    fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    fn enqueue(&mut self, q: Queued) {
        let user = q.job.user.clone();
        let queue = self.waiting.entry(user.clone()).or_default();
        if queue.is_empty() && !self.order.contains(&user) {
            // A user not waiting yet joins the end of the round: among
            // users with as few running, whoever has waited longest starts
            // first (the front would make an overloaded queue last in,
            // first out). A light user still passes a heavy one, by the
            // running count `next` compares first.
            self.order.push_back(user);
        }
        queue.push_back(q);
    }

    /// Ends the queued requests cancelled through the board.
    fn sweep_cancelled(&mut self, queued: &AtomicUsize) {
        let board = &self.board;
        for queue in self.waiting.values_mut() {
            queue.retain_mut(|q| {
                if !q.cancelled() {
                    return true;
                }
                queued.fetch_sub(1, Ordering::AcqRel);
                (q.job.sink)(cancelled(0, 0, q.submitted, None));
                if let Some(id) = &q.job.id {
                    board.remove(id);
                }
                false
            });
        }
        self.waiting.retain(|_, queue| !queue.is_empty());
        let waiting = &self.waiting;
        self.order.retain(|u| waiting.contains_key(u));
    }

    /// Refreshes the board: the queued requests' positions (round-robin
    /// across users in their order, an estimate of `next`'s choices) and
    /// the running ones' token counts.
    fn publish(&self) {
        let mut ahead = Vec::new();
        let longest = self.waiting.values().map(VecDeque::len).max().unwrap_or(0);
        for k in 0..longest {
            for user in &self.order {
                if let Some(q) = self.waiting.get(user).and_then(|queue| queue.get(k)) {
                    ahead.extend(q.job.id.as_deref());
                }
            }
        }
        self.board.positions(ahead.into_iter());
        self.board.progress(
            self.running
                .iter()
                .map(|r| (r.id.as_str(), r.seq.completion_tokens())),
        );
    }

    fn running_of(&self, user: &str) -> usize {
        self.running.iter().filter(|r| r.user == user).count()
    }

    /// Takes the next request to start: fewest running first, round-robin
    /// among equals, skipping users at their running limit. Requests whose
    /// client left while queued are dropped here.
    fn next(&mut self, config: &EngineConfig, queued: &AtomicUsize) -> Option<Queued> {
        loop {
            let cap = config.max_running_per_user.max(1);
            let user = self
                .order
                .iter()
                .map(|u| (u, self.running_of(u)))
                .filter(|(_, n)| *n < cap)
                .min_by_key(|(_, n)| *n)
                .map(|(u, _)| u.clone())?;
            let (q, now_empty) = match self.waiting.get_mut(&user) {
                Some(queue) => (queue.pop_front(), queue.is_empty()),
                None => (None, true),
            };
            if let Some(pos) = self.order.iter().position(|u| *u == user) {
                self.order.remove(pos);
                if !now_empty {
                    self.order.push_back(user.clone());
                }
            }
            if now_empty {
                self.waiting.remove(&user);
            }
            let Some(mut q) = q else {
                continue;
            };
            queued.fetch_sub(1, Ordering::AcqRel);
            if q.cancelled() {
                (q.job.sink)(cancelled(0, 0, q.submitted, None));
            } else if q.job.is_alive() {
                return Some(q);
            }
            if let Some(id) = &q.job.id {
                self.board.remove(id);
            }
        }
    }

    /// Puts back a request `next` took (it cannot start yet): first in its
    /// user's queue, and its user first in the round.
    fn requeue_front(&mut self, q: Queued, queued: &AtomicUsize) {
        let user = q.job.user.clone();
        queued.fetch_add(1, Ordering::AcqRel);
        self.waiting.entry(user.clone()).or_default().push_front(q);
        self.order.retain(|u| *u != user);
        self.order.push_front(user);
    }

    /// Sends `Error` to every request in flight and forgets them.
    fn fail_all(&mut self, queued: &AtomicUsize) {
        for mut r in self.running.drain(..) {
            self.board.remove(&r.id);
            (r.sink)(Event::Error(INTERNAL.to_owned()));
        }
        for (_, queue) in self.waiting.drain() {
            for mut q in queue {
                queued.fetch_sub(1, Ordering::AcqRel);
                if let Some(id) = &q.job.id {
                    self.board.remove(id);
                }
                (q.job.sink)(Event::Error(INTERNAL.to_owned()));
            }
        }
        self.order.clear();
    }
}

/// Runs the scheduler until every `Engine` handle is dropped, restarting it
/// after a panic that escaped a request's step.
fn supervise(
    rx: &mpsc::Receiver<Queued>,
    queued: &AtomicUsize,
    config: EngineConfig,
    board: &Board,
    kv: &KvBudget,
) {
    let fresh = || Scheduler {
        board: board.clone(),
        ..Scheduler::default()
    };
    let mut state = fresh();
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            schedule(rx, queued, config, kv, &mut state);
        }));
        match run {
            Ok(()) => return,
            Err(panic) => {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "the inference scheduler panicked; failing the requests in flight and restarting it"
                );
                // Failing a sink can panic too; never let it end the thread.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    state.fail_all(queued);
                }));
                // A request between the queue and a slot is lost with the
                // panic: nothing the board shows survives it.
                board.clear();
                state = fresh();
            }
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".to_owned())
}

/// What one step of a running sequence came to.
enum Outcome {
    Continue,
    /// Over, with its last event (`Done` or `Error`), sent once the
    /// request's model and place are released: a client that has its answer
    /// finds the model idle and its own place free.
    Finished(Option<Event>),
}

/// Ends a running request with its usage so far (`cancelled`): sent even
/// when nobody listens any more, so the work done is still accounted for
/// by whoever wraps the sink.
fn end_early(r: &mut Running) -> Outcome {
    Outcome::Finished(Some(cancelled(
        r.seq.prompt_tokens(),
        r.seq.completion_tokens(),
        r.submitted,
        Some(r.queued),
    )))
}

/// Hands a step's result to `r`'s client: scored prompt tokens, the new
/// token's log-probability and text, or the end. `Finished` when the
/// request is over (done, failed or its client gone). Every request that
/// ran ends with exactly one `Done` or `Error`.
fn deliver(r: &mut Running, outcome: Result<Step, InferenceError>) -> Outcome {
    let mut alive = true;
    let scored = r.seq.take_prompt_logprobs();
    if !scored.is_empty() {
        alive = (r.sink)(Event::PromptLogprobs(scored));
    }
    if let Some(lp) = r.seq.take_logprob().filter(|_| alive) {
        alive = (r.sink)(Event::Logprob(lp));
    }
    let mut last = None;
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
                last = Some(Event::Done(Usage {
                    finish_reason: reason,
                    prompt_tokens: r.seq.prompt_tokens(),
                    completion_tokens: r.seq.completion_tokens(),
                    time_to_first_token: r.first_token,
                    duration: r.submitted.elapsed(),
                    queued: r.queued,
                }));
                false
            }
            Err(e) => {
                last = Some(Event::Error(e.to_string()));
                false
            }
        };
    match (keep, last) {
        (true, _) => Outcome::Continue,
        (false, Some(last)) => Outcome::Finished(Some(last)),
        // The client left mid-step.
        (false, None) => end_early(r),
    }
}

/// What the planner needs of each running sequence.
fn wants(running: &[Running]) -> Vec<Want> {
    running
        .iter()
        .map(|r| Want {
            prompt_left: r.seq.prompt_left(),
            cached: r.seq.cached(),
        })
        .collect()
}

/// Runs one batched step for the running sequences of one model (`which`
/// are indices into `running`, `fed` their token counts) and hands each
/// its result. Returns each one's outcome. A panic in the forward pass
/// fails that batch's requests; one while delivering fails that request.
fn run_batch(running: &mut [Running], which: &[usize], fed: &[usize]) -> Vec<(usize, Outcome)> {
    let Some(&head) = which.first() else {
        return Vec::new();
    };
    let model = running[head].model.clone();
    let inputs: Vec<(Vec<u32>, bool)> = which
        .iter()
        .map(|&i| {
            let seq = &running[i].seq;
            if fed[i] == 0 {
                // Not in this step (its prompt waits for room in the
                // pace): `next_tokens` would feed at least one token.
                return (Vec::new(), false);
            }
            (seq.next_tokens(fed[i]).to_vec(), seq.wants_all_logits())
        })
        .collect();
    let forward = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(which.len());
        let mut rest: &mut [Running] = running;
        let mut offset = 0;
        for (&i, (tokens, all_logits)) in which.iter().zip(&inputs) {
            // `which` is increasing: split off each sequence in turn.
            let (_, tail) = rest.split_at_mut(i - offset);
            let (this, tail) = tail.split_at_mut(1);
            rest = tail;
            offset = i + 1;
            if !tokens.is_empty() {
                items.push(BatchItem {
                    kv: this[0].seq.kv_mut(),
                    tokens,
                    all_logits: *all_logits,
                });
            }
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        model.model().forward_batch(&mut items)
    }));
    let mut logits = match forward {
        Ok(Ok(l)) => l.into_iter(),
        Ok(Err(e)) => {
            let message = e.to_string();
            return which
                .iter()
                .map(|&i| (i, Outcome::Finished(Some(Event::Error(message.clone())))))
                .collect();
        }
        Err(panic) => {
            tracing::error!(
                model = %model.id,
                panic = panic_message(&*panic),
                "a forward pass panicked; failing its batch"
            );
            return which
                .iter()
                .map(|&i| {
                    (
                        i,
                        Outcome::Finished(Some(Event::Error(INTERNAL.to_owned()))),
                    )
                })
                .collect();
        }
    };
    // Sampling of each sequence in parallel on the forward pass's threads:
    // at a batch of eight, sampling over a 49k vocabulary on one thread was
    // a tenth of a step. Each sequence is touched by one task only.
    // (sequence, tokens fed, logits), or None when it sat out.
    type Accept<'a> = Option<(&'a mut Running, usize, Option<Vec<f32>>)>;
    let mut jobs: Vec<(usize, Accept<'_>)> = Vec::with_capacity(which.len());
    let mut wanted = which.iter().zip(&inputs).peekable();
    for (i, r) in running.iter_mut().enumerate() {
        let Some(&(&w, (tokens, _))) = wanted.peek() else {
            break;
        };
        if w != i {
            continue;
        }
        wanted.next();
        if fed[i] == 0 {
            jobs.push((i, None));
            continue;
        }
        let l = if tokens.is_empty() {
            None
        } else {
            logits.next()
        };
        jobs.push((i, Some((r, tokens.len(), l))));
    }
    // Sampling in parallel; delivery (the clients' sinks) stays on this
    // thread, so a sink that blocks never holds a forward-pool worker.
    type Sampled = std::thread::Result<Result<Step, InferenceError>>;
    let sampled: Vec<(usize, Option<Sampled>)> = crate::model::pool().install(|| {
        jobs.into_par_iter()
            .map(|(i, job)| {
                let sampled = job.map(|(r, fed, l)| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        r.seq.accept(fed, l, &r.model.tokenizer)
                    }))
                });
                (i, sampled)
            })
            .collect()
    });
    sampled
        .into_iter()
        .map(|(i, sampled)| {
            let Some(sampled) = sampled else {
                return (i, Outcome::Continue);
            };
            let r = &mut running[i];
            let step = sampled.and_then(|outcome| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(r, outcome)))
            });
            let outcome = step.unwrap_or_else(|panic| {
                tracing::error!(
                    user = %r.user,
                    model = %r.model.id,
                    panic = panic_message(&*panic),
                    "a request panicked while generating; failing it"
                );
                Outcome::Finished(Some(Event::Error(INTERNAL.to_owned())))
            });
            (i, outcome)
        })
        .collect()
}

/// Starts queued requests while there are free slots and room in the
/// key/value cache. A request that does not fit yet stays first in line
/// (nobody passes it, so a long request is not starved by short ones);
/// one that could never fit fails with a clear message.
fn fill(state: &mut Scheduler, config: &EngineConfig, queued: &AtomicUsize, kv: &KvBudget) {
    while state.running.len() < config.max_active.max(1) {
        let Some(q) = state.next(config, queued) else {
            break;
        };
        let model = q.job.model.clone();
        let layout = model.model().kv_layout();
        let positions = model.positions_needed(q.job.prompt.len(), &q.job.params);
        let id = q.job.id.clone().unwrap_or_default();
        if !kv.could_fit(&layout, positions) {
            let Queued { mut job, .. } = q;
            state.board.remove(&id);
            let mib = |b: usize| b.div_ceil(1 << 20);
            (job.sink)(Event::Error(format!(
                "this request needs {} MiB of key/value cache (prompt and max_tokens: {positions} tokens) but the server's kv_cache_mb is {} MiB; lower max_tokens or shorten the prompt",
                mib(crate::kv::KvLayout::blocks_for(positions).saturating_mul(layout.block_bytes())),
                mib(kv.limit().unwrap_or(0)),
            )));
            continue;
        }
        let Some(cache) = kv.reserve(layout, positions) else {
            state.board.waiting_for_memory(&id, true);
            state.requeue_front(q, queued);
            break;
        };
        let Queued {
            mut job,
            cancel,
            submitted,
            _ticket,
        } = q;
        match model.sequence(
            cache,
            std::mem::take(&mut job.prompt),
            job.params.clone(),
            job.constraint.take(),
        ) {
            Ok(seq) => {
                state.board.start(&id);
                state.running.push(Running {
                    id,
                    cancel,
                    user: job.user,
                    model: job.model,
                    seq,
                    sink: job.sink,
                    alive: job.alive,
                    submitted,
                    queued: submitted.elapsed(),
                    first_token: None,
                    _ticket,
                });
            }
            Err(e) => {
                state.board.remove(&id);
                (job.sink)(Event::Error(e.to_string()));
            }
        }
    }
}

/// Ends running request `i` with `last` (its model, sequence, cache and
/// place released first).
fn retire(state: &mut Scheduler, i: usize, last: Option<Event>) {
    let Running { id, mut sink, .. } = state.running.remove(i);
    state.board.remove(&id);
    if let Some(event) = last {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(event)));
    }
}

fn schedule(
    rx: &mpsc::Receiver<Queued>,
    queued: &AtomicUsize,
    config: EngineConfig,
    kv: &KvBudget,
    state: &mut Scheduler,
) {
    loop {
        // Take new requests: block only when there is nothing to do.
        if state.is_idle() {
            match rx.recv() {
                Ok(q) => state.enqueue(q),
                Err(_) => return,
            }
        }
        while let Ok(q) = rx.try_recv() {
            state.enqueue(q);
        }
        state.sweep_cancelled(queued);
        fill(state, &config, queued, kv);

        // Requests whose client left or that were cancelled end before
        // the step.
        let mut i = 0;
        while i < state.running.len() {
            let r = &mut state.running[i];
            if !r.alive.as_ref().is_none_or(|f| f()) || r.cancel.load(Ordering::Acquire) {
                let Outcome::Finished(last) = end_early(r) else {
                    unreachable!("end_early always finishes")
                };
                retire(state, i, last);
            } else {
                i += 1;
            }
        }
        if state.running.is_empty() {
            state.publish();
            continue;
        }

        // One batched step per model.
        let wants = wants(&state.running);
        let fed = plan(
            &wants,
            &Limits {
                step_tokens: config.step_tokens,
                prefill_chunk_while_decoding: config.prefill_chunk_while_decoding,
                decode_slowdown: config.decode_slowdown,
            },
            &state.pace,
        );
        let decoding = wants.iter().any(|w| w.prompt_left == 0);
        let (shape, prompt_rows) = shape_of(&wants, &fed);
        let started = Instant::now();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, r) in state.running.iter().enumerate() {
            match groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(&state.running[g[0]].model, &r.model))
            {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        let mut finished: Vec<(usize, Option<Event>)> = Vec::new();
        for group in &groups {
            for (i, outcome) in run_batch(&mut state.running, group, &fed) {
                if let Outcome::Finished(last) = outcome {
                    finished.push((i, last));
                }
            }
        }
        if decoding {
            // Steps without decodes (prompts alone) are not what the pace
            // bounds, and their many rows would skew the fit.
            state
                .pace
                .record(shape, prompt_rows, started.elapsed().as_secs_f64());
        }
        // Highest index first, so the others stay where they are.
        finished.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, last) in finished {
            retire(state, i, last);
        }
        state.publish();
    }
}
