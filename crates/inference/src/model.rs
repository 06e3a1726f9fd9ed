//! A model driven one sequence at a time ([`CausalLm`]), for tests, tools
//! and benchmarks; the engine batches sequences through
//! [`LlamaModel::forward_batch`] instead.

use std::path::Path;

use candle_core::Device;

use crate::InferenceError;
use crate::error::catch_panics;
use crate::gguf::{GgufFile, open_reader};
use crate::kv::{KvBudget, KvLayout, KvSeq};
use crate::transformer::{ARCHITECTURES, BatchItem, Transformer};

/// A causal language model with its own KV cache.
pub trait CausalLm: Send {
    /// Feeds `tokens` at positions `pos..pos + tokens.len()` and returns the
    /// logits for the next token after the last one.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, InferenceError>;

    /// Forgets the KV cache (a new sequence starts at position 0).
    fn reset(&mut self);

    /// Longest sequence (prompt + completion) the model accepts.
    fn context_length(&self) -> usize;
}

/// A GGUF decoder model on the CPU: the llama family (SmolLM2, TinyLlama,
/// Llama 2/3, Mistral), qwen2 and qwen3, run by [`Transformer`].
pub struct LlamaModel {
    weights: Transformer,
    /// The cache of the one sequence [`CausalLm`] drives (unlimited
    /// budget: its context length bounds it).
    kv: KvSeq,
    context_length: usize,
}

impl std::fmt::Debug for LlamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaModel")
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

impl LlamaModel {
    /// Loads the weights of an opened GGUF file. A file candle chokes on
    /// is an error, not a panic.
    pub fn load(file: GgufFile) -> Result<Self, InferenceError> {
        Self::check_architecture(&file)?;
        let path = file.path().to_owned();
        let mut reader = open_reader(&path)?;
        let device = Device::Cpu;
        let weights = catch_panics("loading the weights", || {
            Ok(Transformer::from_gguf(
                file.into_content(),
                &mut reader,
                &device,
            )?)
        })?;
        let context_length = weights.context_length();
        Ok(LlamaModel {
            kv: own_cache(&weights),
            weights,
            context_length,
        })
    }

    /// Serves at most `max` tokens of context (prompt and answer), fewer
    /// than the model was trained for: a smaller key/value cache, and a
    /// long conversation trimmed sooner.
    pub fn limit_context(&mut self, max: usize) {
        self.context_length = self.context_length.min(max.max(1));
    }

    /// Fails with [`InferenceError::UnsupportedArchitecture`] unless the
    /// file's `general.architecture` is one this type runs.
    pub fn check_architecture(file: &GgufFile) -> Result<(), InferenceError> {
        match file.architecture()? {
            a if ARCHITECTURES.contains(&a) => Ok(()),
            other => Err(InferenceError::UnsupportedArchitecture(other.to_owned())),
        }
    }

    /// Opens, validates and loads a GGUF file.
    pub fn open(path: &Path) -> Result<Self, InferenceError> {
        Self::load(GgufFile::open(path)?)
    }

    /// A new sequence on the same weights: the quantized tensors are shared
    /// (reference-counted), only the KV cache is the fork's own.
    pub fn fork(&self) -> Self {
        LlamaModel {
            weights: self.weights.clone(),
            kv: own_cache(&self.weights),
            context_length: self.context_length,
        }
    }

    /// The shape of this model's key/value cache.
    pub fn kv_layout(&self) -> KvLayout {
        self.weights.kv_layout()
    }

    /// One batched step for several sequences (see
    /// [`Transformer::forward_batch`]), on the forward pool. Each item's
    /// tokens must fit this model's context after its cached positions.
    pub fn forward_batch(
        &self,
        items: &mut [BatchItem<'_>],
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        for item in items.iter() {
            let end = item.kv.len().saturating_add(item.tokens.len());
            if end > self.context_length {
                return Err(InferenceError::ContextLength {
                    tokens: end,
                    context: self.context_length,
                });
            }
        }
        let weights = &self.weights;
        Ok(pool().install(|| weights.forward_batch(items))?)
    }
}

fn own_cache(weights: &Transformer) -> KvSeq {
    // An unlimited budget always grants a reservation.
    KvBudget::unlimited()
        .reserve(weights.kv_layout(), 0)
        .unwrap_or_else(|| unreachable!("an unlimited budget refused a reservation"))
}

impl CausalLm for LlamaModel {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, InferenceError> {
        if tokens.is_empty() {
            return Err(InferenceError::Candle(
                "forward needs at least one token".into(),
            ));
        }
        if pos + tokens.len() > self.context_length {
            return Err(InferenceError::ContextLength {
                tokens: pos + tokens.len(),
                context: self.context_length,
            });
        }
        if pos == 0 {
            self.kv.clear();
        } else if pos != self.kv.len() {
            return Err(InferenceError::Candle(format!(
                "position {pos} does not follow the {} cached positions",
                self.kv.len()
            )));
        }
        let weights = &self.weights;
        let mut items = [BatchItem {
            kv: &mut self.kv,
            tokens,
            all_logits: false,
        }];
        let mut logits = pool().install(|| weights.forward_batch(&mut items))?;
        logits
            .pop()
            .ok_or_else(|| InferenceError::Candle("no logits".into()))
    }

    fn reset(&mut self) {
        self.kv.clear();
    }

    fn context_length(&self) -> usize {
        self.context_length
    }
}

/// How many threads a forward pass runs on.
pub fn forward_threads() -> usize {
    pool().current_num_threads()
}

/// The threads every forward pass runs on. Running the whole pass inside
/// the pool makes the caller a worker: the matmuls' parallel loops split
/// work by stealing instead of waking sleeping threads through a latch,
/// which cost a quarter of decode time (scheduler calls in `perf`).
pub(crate) fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(candle_core::utils::get_num_threads())
            .thread_name(|i| format!("offgrid-forward-{i}"))
            .build()
            // Building a pool only fails if threads cannot be spawned; fall
            // back to the global pool's configuration then.
            .unwrap_or_else(|_| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a one-thread pool")
            })
    })
}

/// Index of the largest logit (greedy choice); ties go to the lowest id.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best as u32
}
