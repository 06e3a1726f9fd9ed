//! The forward pass, behind a trait so our own kernels (or continuous
//! batching) can replace candle's reference implementation later.

use std::path::Path;

use candle_core::Device;

use crate::InferenceError;
use crate::error::catch_panics;
use crate::gguf::{GgufFile, open_reader};
use crate::transformer::{ARCHITECTURES, Transformer};

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
    device: Device,
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
            weights,
            device,
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
    /// (reference-counted), only the KV cache is the fork's own. This is how
    /// several requests decode at once on one loaded model.
    pub fn fork(&self) -> Self {
        LlamaModel {
            weights: self.weights.fork(),
            device: self.device.clone(),
            context_length: self.context_length,
        }
    }
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
        let weights = &mut self.weights;
        let logits = pool().install(|| weights.forward(tokens, pos))?;
        Ok(logits.to_dtype(candle_core::DType::F32)?.to_vec1()?)
    }

    fn reset(&mut self) {
        self.weights.clear_kv_cache();
    }

    fn context_length(&self) -> usize {
        self.context_length
    }
}

/// The threads every forward pass runs on. Running the whole pass inside
/// the pool makes the caller a worker: the matmuls' parallel loops split
/// work by stealing instead of waking sleeping threads through a latch,
/// which cost a quarter of decode time (scheduler calls in `perf`).
fn pool() -> &'static rayon::ThreadPool {
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
