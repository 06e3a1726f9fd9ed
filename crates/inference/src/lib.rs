#![doc = include_str!("../README.md")]

pub mod board;
pub mod embed;
pub mod engine;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod grammar;
pub mod kv;
pub mod limits;
pub mod model;
pub mod models;
pub mod quant;
pub mod registry;
pub mod simd;
pub mod template;
pub mod tokenizer;
pub mod transformer;

pub use board::{Board, JobInfo, JobState};
pub use embed::{Embedder, Embeddings};
pub use engine::{Admission, ChatModel, Engine, EngineConfig, EngineError, Event, Job, Usage};
pub use error::InferenceError;
pub use generate::{FinishReason, SamplingParams, Sequence, Step, TokenLogprob};
pub use gguf::GgufFile;
pub use grammar::{Constraint, Grammars, OutputFormat};
pub use limits::{Admitted, PerKeyLimit};
pub use model::{CausalLm, LlamaModel, forward_threads};
pub use models::{
    EmbedRequest, GenerateRequest, Generation, ModelError, ModelStatus, Models, ModelsConfig,
    Prompt, Requester, Ticket,
};
pub use registry::{ModelEntry, ModelKind, ModelRegistry};
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::TextTokenizer;
