//! Bodies of the preset routes.

use offgrid_domain::workspace::{Preset as StoredPreset, PresetFields};
use offgrid_domain::{PresetId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sessions::UserRef;

/// A preset: a saved system prompt and generation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preset {
    /// Id.
    #[schema(value_type = String)]
    pub id: PresetId,
    /// `preset`.
    pub object: String,
    /// Owner.
    pub owner: UserRef,
    /// Name.
    pub name: String,
    /// The system prompt chats start with.
    pub system_prompt: String,
    /// Model to use.
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Longest answer.
    pub max_tokens: Option<i64>,
    /// Visible (read-only) to everyone with an account.
    pub is_public: bool,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Last change, RFC 3339.
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl From<StoredPreset> for Preset {
    fn from(p: StoredPreset) -> Self {
        let f = p.fields;
        Preset {
            id: p.id,
            object: "preset".to_owned(),
            owner: UserRef {
                id: p.owner.id,
                username: p.owner.username,
            },
            name: f.name,
            system_prompt: f.system_prompt,
            model: f.model,
            temperature: f.temperature,
            top_p: f.top_p,
            max_tokens: f.max_tokens,
            is_public: f.is_public,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A page of presets: the caller's own and the public ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresetList {
    /// `list`.
    pub object: String,
    /// The presets, most recently changed first.
    pub data: Vec<Preset>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/presets` and `PUT`-like `PATCH /v1/presets/{id}`: every
/// field; absent optional ones are unset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetRequest {
    /// 1 to 100 characters.
    pub name: String,
    /// At most 32 KiB.
    #[serde(default)]
    pub system_prompt: String,
    /// Model to use.
    #[serde(default)]
    pub model: Option<String>,
    /// 0 to 2.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Above 0, at most 1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// At least 1.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Visible (read-only) to everyone with an account.
    #[serde(default)]
    pub is_public: bool,
}

impl From<PresetRequest> for PresetFields {
    fn from(r: PresetRequest) -> Self {
        PresetFields {
            name: r.name,
            system_prompt: r.system_prompt,
            model: r.model,
            temperature: r.temperature,
            top_p: r.top_p,
            max_tokens: r.max_tokens,
            is_public: r.is_public,
        }
    }
}
