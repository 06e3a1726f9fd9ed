//! `POST /v1/embeddings`: request and answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One text, or up to 2,048.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The body of `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingRequest {
    /// An embedding model's id.
    #[schema(example = "all-minilm-l6-v2")]
    pub model: String,
    /// The text or texts.
    pub input: EmbeddingInput,
    /// `float` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// How long the model stays loaded: seconds, or a duration like `"5m"`
    /// (applied for callers who may manage models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::KeepAliveSchema>)]
    pub keep_alive: Option<Value>,
}

/// A vector: floats, or base64 of little-endian f32s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// One embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Embedding {
    /// `embedding`.
    pub object: String,
    /// The input's position.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// Embedding token counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens read.
    pub prompt_tokens: usize,
    /// The same.
    pub total_tokens: usize,
}

/// The answer of `POST /v1/embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingList {
    /// `list`.
    pub object: String,
    /// One per input, in order.
    pub data: Vec<Embedding>,
    /// The model's id.
    pub model: String,
    /// Tokens read.
    pub usage: EmbeddingUsage,
}
