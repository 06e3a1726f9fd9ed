//! One sequence's decoding loop: sampling (temperature, top-p, top-k,
//! repetition penalty, seed), stop tokens, stop sequences that may span
//! token boundaries, and incremental text that never splits a UTF-8
//! character or shows part of a stop sequence.

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

pub use logprob::{TokenLogprob, token_logprob};

use crate::grammar::Constraint;
use crate::kv::{KvBudget, KvSeq};
use crate::model::LlamaModel;
use crate::transformer::BatchItem;
use crate::{InferenceError, TextTokenizer};

/// Prompt tokens fed per step when a sequence runs on its own
/// ([`Sequence::step`]); the engine sizes chunks from its per-step token
/// budget instead.
pub const PREFILL_CHUNK: usize = 64;

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling mass, in (0, 1].
    pub top_p: Option<f64>,
    /// Keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// Penalty (> 1 discourages) for tokens already in the sequence.
    pub repetition_penalty: Option<f32>,
    /// Random seed; the same seed and input give the same text.
    pub seed: u64,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Texts that end the generation (not included in the output).
    pub stop: Vec<String>,
    /// Report each generated token's log-probability and this many most
    /// likely alternatives (`None`: no log-probabilities).
    pub logprobs: Option<usize>,
    /// Also score the prompt: the log-probability of every prompt token
    /// after the first (needs `logprobs`; the prompt is then fed one token
    /// at a time). With `max_tokens` 0 nothing is generated.
    pub score_prompt: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: None,
            top_k: None,
            repetition_penalty: None,
            seed: 42,
            max_tokens: 256,
            stop: Vec::new(),
            logprobs: None,
            score_prompt: false,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-turn token or a stop sequence.
    Stop,
    /// `max_tokens` or the context length was reached.
    Length,
    /// Cancelled through the queue (`DELETE /v1/queue/{id}`).
    Cancelled,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Still prefilling the prompt; nothing to show yet.
    Prefill,
    /// A token was generated; `text` is the newly visible text (possibly
    /// empty while a character or a possible stop sequence is incomplete).
    Token {
        /// The token id.
        id: u32,
        /// Newly visible text.
        text: String,
    },
    /// Finished; `text` is any remaining visible text.
    Done {
        /// Why.
        reason: FinishReason,
        /// Final text not yet emitted.
        text: String,
    },
}

/// A sequence being decoded: its prompt, what it generated, its sampler
/// and its own key/value cache. The forward pass is not its own: each step
/// feeds [`Sequence::next_tokens`] to a (possibly batched) forward pass
/// and gives the logits to [`Sequence::accept`]; [`Sequence::step`] does
/// both for a sequence running alone.
pub struct Sequence {
    kv: KvSeq,
    context_length: usize,
    prompt: Vec<u32>,
    prefilled: usize,
    generated: Vec<u32>,
    /// Bytes of `decoded` already handed out.
    emitted: usize,
    /// Generated ids without special tokens, and how many of `generated`
    /// they cover.
    visible: Vec<u32>,
    seen: usize,
    /// Text of `visible[..read_offset]`, decoded incrementally: each step
    /// decodes only the window from `prefix_offset`, so streaming costs
    /// O(1) per token instead of re-decoding the whole completion.
    decoded: String,
    prefix_offset: usize,
    read_offset: usize,
    logits: Option<Vec<f32>>,
    sampler: LogitsProcessor,
    params: SamplingParams,
    stop_ids: Vec<u32>,
    finished: bool,
    pending_logprob: Option<TokenLogprob>,
    prompt_logprobs: Vec<TokenLogprob>,
    constraint: Option<Constraint>,
}

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("prompt", &self.prompt.len())
            .field("generated", &self.generated.len())
            .finish_non_exhaustive()
    }
}

fn sampling(p: &SamplingParams) -> Sampling {
    if p.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = p.temperature;
    match (p.top_k, p.top_p) {
        (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
        (Some(k), None) => Sampling::TopK { k, temperature },
        (None, Some(p)) if p < 1.0 => Sampling::TopP { p, temperature },
        _ => Sampling::All { temperature },
    }
}

/// End-of-turn tokens of a tokenizer: its EOS plus the usual chat markers.
pub fn stop_token_ids(tokenizer: &TextTokenizer) -> Vec<u32> {
    let mut ids: Vec<u32> = [
        "<|im_end|>",
        "<|endoftext|>",
        "<|eot_id|>",
        "<|end|>",
        "</s>",
    ]
    .iter()
    .filter_map(|t| tokenizer.id(t))
    .chain(tokenizer.eos_id())
    .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Sequence {
    /// A sequence on `model` for `prompt`, with a cache of its own (not
    /// counted in any engine's budget). Fails when the prompt leaves no
    /// room in the context.
    pub fn new(
        model: &LlamaModel,
        prompt: Vec<u32>,
        params: SamplingParams,
        stop_ids: Vec<u32>,
    ) -> Result<Self, InferenceError> {
        let kv = KvBudget::unlimited()
            .reserve(model.kv_layout(), 0)
            .ok_or_else(|| InferenceError::Candle("cannot reserve a cache".into()))?;
        use crate::CausalLm;
        Self::with_cache(kv, model.context_length(), prompt, params, stop_ids)
    }

    /// A sequence for `prompt` writing into `kv` (a reservation from an
    /// engine's budget), in a context of `context_length` tokens.
    pub fn with_cache(
        kv: KvSeq,
        context_length: usize,
        prompt: Vec<u32>,
        params: SamplingParams,
        stop_ids: Vec<u32>,
    ) -> Result<Self, InferenceError> {
        if prompt.is_empty() {
            return Err(InferenceError::Tokenizer("the prompt is empty".into()));
        }
        if prompt.len() >= context_length {
            return Err(InferenceError::ContextLength {
                tokens: prompt.len(),
                context: context_length,
            });
        }
        Ok(Sequence {
            sampler: LogitsProcessor::from_sampling(params.seed, sampling(&params)),
            kv,
            context_length,
            prompt,
            prefilled: 0,
            generated: Vec::new(),
            emitted: 0,
            visible: Vec::new(),
            seen: 0,
            decoded: String::new(),
            prefix_offset: 0,
            read_offset: 0,
            logits: None,
            params,
            stop_ids,
            finished: false,
            pending_logprob: None,
            prompt_logprobs: Vec::new(),
            constraint: None,
        })
    }

    /// Holds the output to a grammar ([`crate::grammar`]): every sampled
    /// token is one it allows, and the sequence ends where it is complete.
    pub fn constrained(mut self, constraint: Constraint) -> Self {
        self.constraint = Some(constraint);
        self
    }

    /// Prompt length in tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt.len()
    }

    /// Tokens generated so far.
    pub fn completion_tokens(&self) -> usize {
        self.generated.len()
    }

    /// The log-probability of the token the last step generated, once.
    pub fn take_logprob(&mut self) -> Option<TokenLogprob> {
        self.pending_logprob.take()
    }

    /// Log-probabilities of prompt tokens scored since the last call.
    pub fn take_prompt_logprobs(&mut self) -> Vec<TokenLogprob> {
        std::mem::take(&mut self.prompt_logprobs)
    }

    /// Whether the sequence has finished.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the prompt is still being read.
    pub fn is_prefilling(&self) -> bool {
        self.prefilled < self.prompt.len()
    }

    /// Positions already in the cache.
    pub fn cached(&self) -> usize {
        self.kv.len()
    }

    /// Prompt tokens not yet fed.
    pub fn prompt_left(&self) -> usize {
        self.prompt.len() - self.prefilled
    }

    /// Whether a step needs the logits after every token it feeds (the
    /// prompt is being scored).
    pub fn wants_all_logits(&self) -> bool {
        self.is_prefilling() && self.params.score_prompt && self.params.logprobs.is_some()
    }

    /// The tokens the next step feeds: at most `chunk` (at least one) of
    /// the prompt while it is being read, then the last generated token.
    /// Empty once finished.
    pub fn next_tokens(&self, chunk: usize) -> &[u32] {
        if self.finished {
            return &[];
        }
        if self.is_prefilling() {
            let end = self.prefilled + chunk.max(1).min(self.prompt_left());
            return &self.prompt[self.prefilled..end];
        }
        match self.generated.last() {
            Some(last) if self.logits.is_none() => std::slice::from_ref(last),
            _ => &[],
        }
    }

    /// The cache, for a forward pass.
    pub fn kv_mut(&mut self) -> &mut KvSeq {
        &mut self.kv
    }

    /// Runs one step alone on `model`: a prefill chunk, or one generated
    /// token.
    pub fn step(
        &mut self,
        model: &LlamaModel,
        tokenizer: &TextTokenizer,
    ) -> Result<Step, InferenceError> {
        let tokens = self.next_tokens(PREFILL_CHUNK).to_vec();
        if tokens.is_empty() {
            return self.accept(0, None, tokenizer);
        }
        let all_logits = self.wants_all_logits();
        let mut logits = model.forward_batch(&mut [BatchItem {
            kv: &mut self.kv,
            tokens: &tokens,
            all_logits,
        }])?;
        self.accept(tokens.len(), logits.pop(), tokenizer)
    }

    /// Takes a step's result: `fed` tokens from [`Sequence::next_tokens`]
    /// went through the model and gave `logits` (after the last token, or
    /// after each when [`Sequence::wants_all_logits`]). Samples the next
    /// token once the prompt is read.
    pub fn accept(
        &mut self,
        fed: usize,
        logits: Option<Vec<f32>>,
        tokenizer: &TextTokenizer,
    ) -> Result<Step, InferenceError> {
        if self.finished {
            return Ok(Step::Done {
                reason: FinishReason::Stop,
                text: String::new(),
            });
        }
        if self.is_prefilling() {
            let Some(logits) = logits.filter(|_| fed > 0 && fed <= self.prompt_left()) else {
                return Err(InferenceError::Candle(
                    "a prompt step without logits".into(),
                ));
            };
            let start = self.prefilled;
            self.prefilled += fed;
            let last = if self.params.score_prompt
                && let Some(k) = self.params.logprobs
            {
                let vocab = logits.len() / fed;
                for (j, row) in logits.chunks_exact(vocab.max(1)).enumerate() {
                    if let Some(next) = self.prompt.get(start + j + 1) {
                        self.prompt_logprobs.push(token_logprob(row, *next, k));
                    }
                }
                logits[(fed - 1) * vocab..].to_vec()
            } else {
                logits
            };
            self.logits = Some(last);
            if self.is_prefilling() {
                return Ok(Step::Prefill);
            }
            if self.params.max_tokens == 0 {
                return self.finish(tokenizer, FinishReason::Length);
            }
        } else if fed > 0 {
            self.logits = logits;
        }
        let Some(mut logits) = self.logits.take() else {
            return Err(InferenceError::Candle("no logits to sample from".into()));
        };
        let vocab = logits.len();
        let raw = self.params.logprobs.map(|k| (logits.clone(), k));
        if let Some(constraint) = self.constraint.as_mut() {
            constraint.mask(&mut logits)?;
        }
        let mut t = Tensor::from_vec(logits, (vocab,), &Device::Cpu)?;
        if let Some(penalty) = self
            .params
            .repetition_penalty
            .filter(|p| (*p - 1.0).abs() > 1e-6)
        {
            let mut context = self.prompt.clone();
            context.extend_from_slice(&self.generated);
            t = candle_transformers::utils::apply_repeat_penalty(&t, penalty, &context)?;
        }
        let id = self.sampler.sample(&t)?;
        if self.stop_ids.contains(&id) {
            return self.finish(tokenizer, FinishReason::Stop);
        }
        if let Some((raw, k)) = raw {
            self.pending_logprob = Some(token_logprob(&raw, id, k));
        }
        let complete = match self.constraint.as_mut() {
            Some(constraint) => {
                constraint.advance(id)?;
                constraint.is_complete()
            }
            None => false,
        };
        self.generated.push(id);
        let text = self.visible_delta(tokenizer, false)?;
        if let Some(done) = text.stop {
            self.finished = true;
            return Ok(Step::Done {
                reason: FinishReason::Stop,
                text: done,
            });
        }
        let pos = self.prompt.len() + self.generated.len() - 1;
        let length =
            self.generated.len() >= self.params.max_tokens || pos + 1 >= self.context_length;
        if complete || length {
            let reason = if complete {
                FinishReason::Stop
            } else {
                FinishReason::Length
            };
            let mut rest = text.delta;
            let tail = self.finish(tokenizer, reason)?;
            if let Step::Done { text, .. } = tail {
                rest.push_str(&text);
            }
            return Ok(Step::Done { reason, text: rest });
        }
        Ok(Step::Token {
            id,
            text: text.delta,
        })
    }

    fn finish(
        &mut self,
        tokenizer: &TextTokenizer,
        reason: FinishReason,
    ) -> Result<Step, InferenceError> {
        self.finished = true;
        let text = self.visible_delta(tokenizer, true)?;
        Ok(Step::Done {
            reason,
            text: text.stop.unwrap_or(text.delta),
        })
    }

    /// The completion text decoded so far, without special tokens.
    pub fn text(&self, tokenizer: &TextTokenizer) -> Result<String, InferenceError> {
        let visible: Vec<u32> = self
            .generated
            .iter()
            .copied()
            .filter(|id| !tokenizer.is_special(*id))
            .collect();
        tokenizer.decode(&visible)
    }

    /// New text since the last call. Holds back an incomplete UTF-8
    /// character and any tail that could start a stop sequence, unless
    /// `flush`. When a stop sequence appears, `stop` holds the text before
    /// it that was not yet emitted.
    fn visible_delta(
        &mut self,
        tokenizer: &TextTokenizer,
        flush: bool,
    ) -> Result<Delta, InferenceError> {
        self.extend_decoded(tokenizer, flush)?;
        // A stop sequence can only start in what was not emitted yet: a
        // prefix of one is always held back.
        let tail = &self.decoded[self.emitted..];
        if let Some(cut) = self
            .params
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| tail.find(s.as_str()))
            .min()
        {
            let before = tail[..cut].to_owned();
            self.emitted += cut;
            return Ok(Delta {
                delta: String::new(),
                stop: Some(before),
            });
        }
        let mut end = tail.len();
        if !flush {
            end -= self
                .params
                .stop
                .iter()
                .map(|s| longest_prefix_suffix(tail, s))
                .max()
                .unwrap_or(0);
        }
        let delta = tail[..end].to_owned();
        self.emitted += end;
        Ok(Delta { delta, stop: None })
    }

    /// Appends the text of newly generated tokens to `decoded`. Text that
    /// ends in an incomplete UTF-8 character waits for the next token
    /// (unless `flush`). The window starts at the previous step's tokens,
    /// so decoders that treat a leading space specially (SentencePiece)
    /// see the same context as a full decode.
    fn extend_decoded(
        &mut self,
        tokenizer: &TextTokenizer,
        flush: bool,
    ) -> Result<(), InferenceError> {
        for id in &self.generated[self.seen..] {
            if !tokenizer.is_special(*id) {
                self.visible.push(*id);
            }
        }
        self.seen = self.generated.len();
        if self.read_offset == self.visible.len() {
            return Ok(());
        }
        let prefix = tokenizer.decode(&self.visible[self.prefix_offset..self.read_offset])?;
        let text = tokenizer.decode(&self.visible[self.prefix_offset..])?;
        let complete = !text.ends_with('\u{FFFD}');
        if (complete || flush) && text.len() >= prefix.len() && text.starts_with(&prefix) {
            self.decoded.push_str(&text[prefix.len()..]);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.visible.len();
        } else if flush {
            // The window's start no longer decodes the same (cannot happen
            // with the byte-level and SentencePiece decoders); fall back to
            // decoding everything.
            self.decoded = tokenizer.decode(&self.visible)?;
            self.emitted = self.emitted.min(self.decoded.len());
            while !self.decoded.is_char_boundary(self.emitted) {
                self.emitted -= 1;
            }
            self.prefix_offset = self.visible.len();
            self.read_offset = self.visible.len();
        }
        Ok(())
    }
}

struct Delta {
    delta: String,
    stop: Option<String>,
}

/// Length (in bytes) of the longest suffix of `text` that is a proper
/// prefix of `stop`, at a character boundary.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    let max = stop.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .filter(|&n| text.is_char_boundary(text.len() - n) && stop.is_char_boundary(n))
        .find(|&n| text.as_bytes()[text.len() - n..] == stop.as_bytes()[..n])
        .unwrap_or(0)
}

mod logprob;
#[cfg(test)]
mod tests;
