//! The forward pass, behind a trait so our own kernels (or continuous
//! batching) can replace candle's reference implementation later.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama;

use crate::InferenceError;
use crate::gguf::{GgufFile, open_reader};

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

/// Llama-family GGUF models (SmolLM2, TinyLlama, Llama 2/3, Mistral) on
/// candle's quantized llama implementation, on the CPU.
pub struct LlamaModel {
    weights: quantized_llama::ModelWeights,
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
    /// Loads the weights of an opened GGUF file.
    pub fn load(file: GgufFile) -> Result<Self, InferenceError> {
        Self::check_architecture(&file)?;
        // candle's quantized llama precomputes RoPE for at most MAX_SEQ_LEN.
        let context_length = file
            .context_length()
            .unwrap_or(quantized_llama::MAX_SEQ_LEN)
            .min(quantized_llama::MAX_SEQ_LEN);
        let path = file.path().to_owned();
        let mut reader = open_reader(&path)?;
        let device = Device::Cpu;
        let weights =
            quantized_llama::ModelWeights::from_gguf(file.into_content(), &mut reader, &device)?;
        Ok(LlamaModel {
            weights,
            device,
            context_length,
        })
    }

    /// Fails with [`InferenceError::UnsupportedArchitecture`] unless the
    /// file's `general.architecture` is one this type runs.
    pub fn check_architecture(file: &GgufFile) -> Result<(), InferenceError> {
        match file.architecture()? {
            "llama" => Ok(()),
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
        let mut weights = self.weights.clone();
        weights.clear_kv_cache();
        LlamaModel {
            weights,
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
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, pos)?;
        Ok(logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?)
    }

    fn reset(&mut self) {
        self.weights.clear_kv_cache();
    }

    fn context_length(&self) -> usize {
        self.context_length
    }
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
