//! Bodies of the chat session routes: sessions, their messages and shares.

use offgrid_domain::workspace::{ChatMessage, Grant, GrantLevel, MessageRole, MessageUsage};
use offgrid_domain::{ChatSessionId, Timestamp, UserId};
use offgrid_workspace::SessionView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A share level (`offgrid_domain::workspace::GrantLevel`).
#[derive(Serialize, ToSchema)]
#[schema(as = SharePermission)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum GrantLevelSchema {
    Read,
    Write,
    Admin,
}

/// Who wrote a message (`offgrid_domain::workspace::MessageRole`).
#[derive(Serialize, ToSchema)]
#[schema(as = MessageRole)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum MessageRoleSchema {
    System,
    User,
    Assistant,
}

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRef {
    /// Id.
    #[schema(value_type = String)]
    pub id: UserId,
    /// Login name.
    pub username: String,
}

/// Token counts of a stored answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageTokens {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Id, increasing within the session.
    pub id: i64,
    /// Who wrote it.
    #[schema(value_type = MessageRoleSchema)]
    pub role: MessageRole,
    /// The text.
    pub content: String,
    /// When it was stored (RFC 3339).
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// The model that wrote it (answers).
    pub model: Option<String>,
    /// Token counts (answers).
    pub usage: Option<MessageTokens>,
    /// Sources the answer used.
    #[schema(value_type = Option<Vec<Object>>)]
    pub citations: Option<serde_json::Value>,
    /// The answer was cut off (the client left mid-stream).
    pub interrupted: bool,
}

impl From<ChatMessage> for Message {
    fn from(m: ChatMessage) -> Self {
        Message {
            id: m.id,
            role: m.role,
            content: m.content,
            created_at: m.created_at,
            model: m.model,
            usage: m.usage.map(
                |MessageUsage {
                     prompt_tokens,
                     completion_tokens,
                 }| MessageTokens {
                    prompt_tokens,
                    completion_tokens,
                },
            ),
            citations: m
                .citations
                .and_then(|text| serde_json::from_str(&text).ok()),
            interrupted: m.interrupted,
        }
    }
}

/// A chat session as its caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Id.
    #[schema(value_type = String)]
    pub id: ChatSessionId,
    /// `chat.session`.
    pub object: String,
    /// Title.
    pub title: String,
    /// Default model.
    pub model: Option<String>,
    /// Default preset.
    pub preset_id: Option<String>,
    /// Owner.
    pub owner: UserRef,
    /// The caller's standing: `owner`, `admin`, `write` or `read`.
    pub permission: String,
    /// Messages stored.
    pub message_count: i64,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Last change, RFC 3339.
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    /// The messages, oldest first: only in `GET /v1/sessions/{id}`, and
    /// only when the caller may read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub messages: Option<Vec<Message>>,
}

impl Session {
    /// A session without its messages.
    pub fn new(view: SessionView) -> Self {
        let s = view.session;
        Session {
            id: s.id,
            object: "chat.session".to_owned(),
            title: s.title,
            model: s.model,
            preset_id: s.preset_id,
            owner: UserRef {
                id: s.owner.id,
                username: s.owner.username,
            },
            permission: view.permission.as_str().to_owned(),
            message_count: s.message_count,
            created_at: s.created_at,
            updated_at: s.updated_at,
            messages: None,
        }
    }
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// `list`.
    pub object: String,
    /// The sessions, most recently changed first.
    pub data: Vec<Session>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A share of a session with one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Share {
    /// Who it is shared with.
    pub user: UserRef,
    /// At what level.
    #[schema(value_type = GrantLevelSchema)]
    pub permission: GrantLevel,
    /// When it was made or last changed (RFC 3339).
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<Grant> for Share {
    fn from(g: Grant) -> Self {
        Share {
            user: UserRef {
                id: g.user.id,
                username: g.user.username,
            },
            permission: g.level,
            created_at: g.created_at,
        }
    }
}

/// The shares of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShareList {
    /// `list`.
    pub object: String,
    /// The shares, oldest first.
    pub data: Vec<Share>,
    /// Always null: every share is on the one page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Title (default "New chat"); at most 200 characters.
    #[serde(default)]
    pub title: Option<String>,
    /// Default model.
    #[serde(default)]
    pub model: Option<String>,
    /// Default preset.
    #[serde(default)]
    pub preset_id: Option<String>,
}

/// `PATCH /v1/sessions/{id}`: absent fields stay; `null` clears `model`
/// and `preset_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSessionRequest {
    /// New title (needs admin access).
    #[serde(default)]
    pub title: Option<String>,
    /// New default model.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Option<String>>,
    /// New default preset.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub preset_id: Option<Option<String>>,
}

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMessageRequest {
    /// Who wrote it.
    #[schema(value_type = MessageRoleSchema)]
    pub role: MessageRole,
    /// The text.
    pub content: String,
}

/// `POST /v1/sessions/{id}/shares`: `username` or `user_id`, not both.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Whom, by login name.
    #[serde(default)]
    pub username: Option<String>,
    /// Whom, by id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// At what level.
    #[schema(value_type = GrantLevelSchema)]
    pub permission: GrantLevel,
}
