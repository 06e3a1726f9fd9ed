//! Bodies of the model routes: OpenAI's model object with the registry's
//! fields, and the list of them.

use offgrid_inference::models::ModelStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A model: OpenAI's fields plus the registry's and whether it is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Model {
    /// The id requests name.
    pub id: String,
    /// `model`.
    pub object: String,
    /// When it was installed, Unix seconds.
    pub created: i64,
    /// `offgrid`.
    pub owned_by: String,
    /// `chat` or `embedding`.
    #[serde(rename = "type")]
    pub kind: String,
    /// File format (`gguf`, `safetensors`).
    pub format: String,
    /// Architecture (`llama`, `bert`).
    pub architecture: String,
    /// Parameter count.
    pub parameters: u64,
    /// Weight type (`Q4_1`, `F32`).
    pub quantization: String,
    /// Longest context in tokens, if known.
    pub context_length: Option<u64>,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// SHA-256 of the weights, hex.
    pub sha256: String,
    /// Whether it is in memory now.
    pub loaded: bool,
    /// Embedding models: vector length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = u64)]
    pub dimensions: Option<u64>,
    /// Loaded models only: seconds until an idle unload (null: never).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::present"
    )]
    #[schema(required = false, value_type = Option<u64>)]
    pub expires_in: Option<Option<u64>>,
}

impl From<&ModelStatus> for Model {
    fn from(m: &ModelStatus) -> Self {
        let e = &m.entry;
        Model {
            id: e.id.clone(),
            object: "model".to_owned(),
            created: e.added_at,
            owned_by: "offgrid".to_owned(),
            kind: e.kind.as_str().to_owned(),
            format: e.format.clone(),
            architecture: e.architecture.clone(),
            parameters: e.parameters,
            quantization: e.quantization.clone(),
            context_length: e.context_length,
            size_bytes: e.size_bytes,
            sha256: e.sha256.clone(),
            loaded: m.loaded.is_some(),
            dimensions: e.dimensions,
            expires_in: m.loaded.map(|left| left.map(|d| d.as_secs())),
        }
    }
}

/// `GET /v1/models`: `{"object": "list", "data": [Model]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The installed models.
    pub data: Vec<Model>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_absent_null_and_a_number_survive_a_round_trip() {
        let mut model = Model {
            id: "m".into(),
            object: "model".into(),
            created: 1,
            owned_by: "offgrid".into(),
            kind: "chat".into(),
            format: "gguf".into(),
            architecture: "llama".into(),
            parameters: 1,
            quantization: "Q4_1".into(),
            context_length: None,
            size_bytes: 1,
            sha256: "00".into(),
            loaded: false,
            dimensions: None,
            expires_in: None,
        };
        for expires_in in [None, Some(None), Some(Some(300))] {
            model.expires_in = expires_in;
            let text = serde_json::to_string(&model).unwrap_or_default();
            assert_eq!(text.contains("expires_in"), expires_in.is_some(), "{text}");
            let back: Model = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(back, model);
        }
    }
}
