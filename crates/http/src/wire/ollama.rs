//! Ollama's native API (`/api/...`) as its clients send and read it: the
//! field names, optional fields and shapes of Ollama's `api/types.go` and
//! of the official `ollama` Python client's models. Durations are integer
//! nanoseconds; timestamps RFC 3339.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/generate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaGenerateRequest {
    /// The model (`id` or `id:latest`).
    #[schema(example = "smollm2-135m-instruct")]
    pub model: String,
    /// The prompt; empty: load the model (or unload it with
    /// `keep_alive: 0`) and answer at once.
    #[serde(default)]
    pub prompt: String,
    /// A system message (overrides the model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The prompt is already formatted: no chat template.
    #[serde(default)]
    pub raw: bool,
    /// NDJSON chunks (the default) or one object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` (an object) or a JSON schema: the output is held to it by
    /// constrained decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options (`temperature`, `top_p`, `top_k`, `seed`,
    /// `num_predict`, `stop`, `repeat_penalty`, …); unknown keys are
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
    /// Seconds, or a duration like `"5m"`; 0 unloads after the request,
    /// negative keeps it loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::completions::KeepAliveSchema>)]
    pub keep_alive: Option<Value>,
    /// Text after the answer (fill-in-the-middle): not supported (400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Base64 images: no vision model here (400 when not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// A template override: not supported (400 when not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The deprecated conversation context: not supported (400 when not
    /// empty; use `/api/chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// Thinking: no thinking model here (400 when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<bool>)]
    pub think: Option<Value>,
}

/// One message of `POST /api/chat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text (may be left out).
    #[serde(default)]
    pub content: String,
    /// Base64 images: no vision model here (400 when not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// `POST /api/chat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaChatRequest {
    /// The model (`id` or `id:latest`).
    #[schema(example = "smollm2-135m-instruct")]
    pub model: String,
    /// The conversation; empty: load the model (or unload it with
    /// `keep_alive: 0`) and answer at once.
    #[serde(default)]
    pub messages: Vec<OllamaMessage>,
    /// NDJSON chunks (the default) or one object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` (an object) or a JSON schema: the output is held to it by
    /// constrained decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options, as for `/api/generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
    /// As for `/api/generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::completions::KeepAliveSchema>)]
    pub keep_alive: Option<Value>,
    /// Tools: none of the models here calls tools (400 when not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// Thinking: no thinking model here (400 when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<bool>)]
    pub think: Option<Value>,
}

/// The timings and counts of a finished generation: in the last chunk
/// only (absent from the others).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaMetrics {
    /// From the request's arrival to its end, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Until the engine had the request (loading the model when it was
    /// not loaded, the template, the tokenizer), ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<usize>,
    /// Reading the prompt, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<usize>,
    /// Generating after the first token, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
}

/// A chunk (or the whole answer) of `POST /api/generate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaGenerateResponse {
    /// The model as the request named it.
    pub model: String,
    /// RFC 3339.
    pub created_at: String,
    /// New text (all of it without streaming).
    pub response: String,
    /// The last chunk.
    pub done: bool,
    /// Last chunk: `stop`, `length`, `load` or `unload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Last chunk of a generation: timings and counts.
    #[serde(flatten)]
    pub metrics: OllamaMetrics,
}

/// The assistant's message in a chat chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaReply {
    /// `assistant`.
    pub role: String,
    /// New text (all of it without streaming).
    pub content: String,
}

/// A chunk (or the whole answer) of `POST /api/chat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaChatResponse {
    /// The model as the request named it.
    pub model: String,
    /// RFC 3339.
    pub created_at: String,
    /// In every chunk, the last one too.
    pub message: OllamaReply,
    /// The last chunk.
    pub done: bool,
    /// Last chunk: `stop`, `length`, `load` or `unload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Last chunk of a generation: timings and counts.
    #[serde(flatten)]
    pub metrics: OllamaMetrics,
}

/// `POST /api/embed`'s `input`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OllamaEmbedInput {
    /// One text.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `POST /api/embed`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaEmbedRequest {
    /// An embedding model.
    #[schema(example = "all-minilm-l6-v2")]
    pub model: String,
    /// Text or texts; empty: load the model and answer no vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<OllamaEmbedInput>,
    /// Cut inputs longer than the model's context (the default); false:
    /// such an input is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Keep the first `dimensions` values, normalized again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<i64>,
    /// As for `/api/generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::completions::KeepAliveSchema>)]
    pub keep_alive: Option<Value>,
    /// Accepted and ignored (an embedding has nothing to sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
}

/// `POST /api/embed`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaEmbedResponse {
    /// The model as the request named it.
    pub model: String,
    /// One unit-length vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// ns.
    pub total_duration: u64,
    /// ns (until the model was ready).
    pub load_duration: u64,
    /// Tokens of all inputs.
    pub prompt_eval_count: usize,
}

/// `POST /api/embeddings` (the older form).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaEmbeddingsRequest {
    /// An embedding model.
    #[schema(example = "all-minilm-l6-v2")]
    pub model: String,
    /// The text; empty: load the model and answer an empty vector.
    #[serde(default)]
    pub prompt: String,
    /// As for `/api/generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::completions::KeepAliveSchema>)]
    pub keep_alive: Option<Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
}

/// `POST /api/embeddings`' answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaEmbeddingsResponse {
    /// The vector.
    pub embedding: Vec<f32>,
}

/// A model's details in listings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaModelDetails {
    /// Always empty.
    pub parent_model: String,
    /// `gguf` or `safetensors`.
    pub format: String,
    /// The architecture (`llama`, `bert`).
    pub family: String,
    /// The same, as a list.
    pub families: Vec<String>,
    /// e.g. `135M`.
    pub parameter_size: String,
    /// e.g. `Q4_1`.
    pub quantization_level: String,
}

/// One model of `GET /api/tags`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaTag {
    /// `id:latest`.
    pub name: String,
    /// The same.
    pub model: String,
    /// When it was installed, RFC 3339.
    pub modified_at: String,
    /// Bytes on disk.
    pub size: u64,
    /// SHA-256 of the weights, hex.
    pub digest: String,
    /// What it is.
    pub details: OllamaModelDetails,
}

/// `GET /api/tags`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaTags {
    /// Installed models, newest first.
    pub models: Vec<OllamaTag>,
}

/// One model of `GET /api/ps`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaRunning {
    /// `id:latest`.
    pub name: String,
    /// The same.
    pub model: String,
    /// Bytes on disk.
    pub size: u64,
    /// SHA-256 of the weights, hex.
    pub digest: String,
    /// What it is.
    pub details: OllamaModelDetails,
    /// When it unloads if idle, RFC 3339 (far ahead: never).
    pub expires_at: String,
    /// Always 0: no GPU.
    pub size_vram: u64,
    /// Longest context in tokens (0: unknown).
    pub context_length: u64,
}

/// `GET /api/ps`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaPs {
    /// Loaded models.
    pub models: Vec<OllamaRunning>,
}

/// `POST /api/show`, `POST /api/pull`, `DELETE /api/delete`: a model by
/// `model` (or the older `name`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaModelRef {
    /// The model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The older name of `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pull: one object instead of progress lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Show: accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    /// Pull: accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

/// `POST /api/show`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaShow {
    /// Empty.
    pub license: String,
    /// A Modelfile naming the weights.
    pub modelfile: String,
    /// Modelfile parameters (none set).
    pub parameters: String,
    /// The chat template's source, if the model has one.
    pub template: String,
    /// What it is.
    pub details: OllamaModelDetails,
    /// GGUF-style keys: `general.architecture`,
    /// `general.parameter_count`, `<arch>.context_length`, ….
    #[schema(value_type = Object)]
    pub model_info: Map<String, Value>,
    /// `completion` or `embedding`.
    pub capabilities: Vec<String>,
    /// When it was installed, RFC 3339.
    pub modified_at: String,
}

/// `POST /api/pull`'s answer (one line of progress).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaStatus {
    /// `success`.
    pub status: String,
}

/// `GET /api/version`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaVersion {
    /// OffGrid's version.
    pub version: String,
}

/// An Ollama-route error.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OllamaError {
    /// What went wrong.
    pub error: String,
}
