//! The per-user workspace: chat sessions and their messages, and the share
//! grants on owned resources (sessions now, RAG collections later).
//!
//! Who sees what is decided in two places that cannot be skipped: the
//! repository only returns rows a [`Reader`] may see at all (owner, a
//! grant, or an administrator's "everything"), and the policy crate turns
//! that into a level (read, write, admin) the service checks per action.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ChatSessionId, Principal, Role, Timestamp, UserId};

/// What a share grants, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantLevel {
    /// See it, export it, use it in chat or retrieval.
    Read,
    /// Also add to it (messages, documents) and chat into it.
    Write,
    /// Also rename it and manage its shares (never above one's own level).
    Admin,
}

impl GrantLevel {
    /// Every level, lowest first.
    pub const ALL: [GrantLevel; 3] = [GrantLevel::Read, GrantLevel::Write, GrantLevel::Admin];

    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantLevel::Read => "read",
            GrantLevel::Write => "write",
            GrantLevel::Admin => "admin",
        }
    }
}

impl fmt::Display for GrantLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantLevel {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        GrantLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or(())
    }
}

/// The kinds of resource a grant can be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A chat session.
    Session,
    /// A RAG collection.
    Collection,
}

impl ResourceKind {
    /// The name stored in the grants table.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Session => "session",
            ResourceKind::Collection => "collection",
        }
    }
}

/// Who is reading shareable resources: a user, and whether every user's
/// resources are visible to them. Like [`crate::Scope`], "everything" can
/// only be had by an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    user: UserId,
    all: bool,
}

impl Reader {
    /// A user who sees their own resources and those shared with them.
    pub fn user(user: UserId) -> Self {
        Reader { user, all: false }
    }

    /// The principal as a reader; `all` asks for every user's resources
    /// and is honoured only for an administrator. `None` for an anonymous
    /// guest, who has no workspace.
    pub fn for_principal(principal: &Principal, all: bool) -> Option<Self> {
        let user = principal.user_id.clone()?;
        Some(Reader {
            user,
            all: all && principal.role == Role::Admin,
        })
    }

    /// The reading user.
    pub fn user_id(&self) -> &UserId {
        &self.user
    }

    /// Whether every user's resources are visible.
    pub fn sees_all(&self) -> bool {
        self.all
    }
}

/// A resource's owner as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRef {
    /// The owner's id.
    pub id: UserId,
    /// The owner's username.
    pub username: String,
}

/// A resource as one reader sees it, with the share that reader holds on
/// it (if any; owners and administrators hold none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible<T> {
    /// The resource.
    pub item: T,
    /// The reader's grant on it.
    pub shared: Option<GrantLevel>,
}

/// A chat session: a titled conversation owned by one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSession {
    /// Id.
    pub id: ChatSessionId,
    /// Title.
    pub title: String,
    /// Model it chats with by default.
    pub model: Option<String>,
    /// Preset it uses by default.
    pub preset_id: Option<String>,
    /// Owner.
    pub owner: OwnerRef,
    /// Messages stored.
    pub message_count: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change (a message added counts).
    pub updated_at: Timestamp,
}

/// A chat session to create.
#[derive(Debug, Clone)]
pub struct NewChatSession {
    /// Owner.
    pub owner: UserId,
    /// Title.
    pub title: String,
    /// Default model.
    pub model: Option<String>,
    /// Default preset.
    pub preset_id: Option<String>,
}

/// Changes to a chat session; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ChatSessionPatch {
    /// New title.
    pub title: Option<String>,
    /// New default model (`Some(None)` clears it).
    pub model: Option<Option<String>>,
    /// New default preset (`Some(None)` clears it).
    pub preset_id: Option<Option<String>>,
}

/// Which sessions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The reader's own.
    Own,
    /// Those shared with the reader.
    SharedWithMe,
    /// Every user's (a reader that sees all; others get their own).
    All,
}

/// A position in a listing ordered by last change, newest first: the last
/// row of the previous page. Sent to clients as opaque text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The row's last change.
    pub updated_at: i64,
    /// The row's id (ties on `updated_at`).
    pub id: String,
}

impl Cursor {
    /// The cursor as text: `<updated_at>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.updated_at, self.id)
    }

    /// Parses [`Cursor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('.')?;
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_id || at.len() > 20 {
            return None;
        }
        Some(Cursor {
            updated_at: at.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// One page of a cursor-paged listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPage<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct SessionQuery {
    /// Whose sessions.
    pub listing: Listing,
    /// Case-insensitive text in the title.
    pub q: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Start after this row.
    pub cursor: Option<Cursor>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    /// Instructions.
    System,
    /// A person.
    User,
    /// The model.
    Assistant,
}

impl MessageRole {
    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }
}

impl FromStr for MessageRole {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "system" => Ok(MessageRole::System),
            "user" => Ok(MessageRole::User),
            "assistant" => Ok(MessageRole::Assistant),
            _ => Err(()),
        }
    }
}

/// Token counts of a stored answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageUsage {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Id, increasing within a session.
    pub id: i64,
    /// Who wrote it.
    pub role: MessageRole,
    /// The text.
    pub content: String,
    /// When it was stored.
    pub created_at: Timestamp,
    /// The model that wrote it (answers).
    pub model: Option<String>,
    /// Token counts (answers).
    pub usage: Option<MessageUsage>,
    /// Sources the answer used, as JSON text.
    pub citations: Option<String>,
    /// The answer was cut off (the client left mid-stream).
    pub interrupted: bool,
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatMessage {
    /// Who wrote it.
    pub role: MessageRole,
    /// The text.
    pub content: String,
    /// The model that wrote it (answers).
    pub model: Option<String>,
    /// Token counts (answers).
    pub usage: Option<MessageUsage>,
    /// Sources, as JSON text.
    pub citations: Option<String>,
    /// Cut off.
    pub interrupted: bool,
}

/// A share of a resource with one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who it is shared with.
    pub user: OwnerRef,
    /// At what level.
    pub level: GrantLevel,
    /// When (last changed).
    pub created_at: Timestamp,
}

/// A preset: a saved system prompt with generation parameters, private to
/// its owner or public (read-only to everyone else).
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Id.
    pub id: crate::PresetId,
    /// Owner.
    pub owner: OwnerRef,
    /// The fields.
    pub fields: PresetFields,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What a preset holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PresetFields {
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
    /// Visible (read-only) to every account holder.
    pub is_public: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor {
            updated_at: 1_700_000_000,
            id: "0b9c6d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for junk in [
            "",
            ".",
            "1.",
            ".abc",
            "x.abc",
            "1.a b",
            "1.a'--",
            "99999999999999999999999.a",
            &format!("1.{}", "a".repeat(65)),
        ] {
            assert_eq!(Cursor::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn only_an_administrator_reads_everything() {
        let mut p = Principal::local_owner();
        assert!(Reader::for_principal(&p, true).is_some_and(|r| r.sees_all()));
        p.role = Role::User;
        assert!(Reader::for_principal(&p, true).is_some_and(|r| !r.sees_all()));
        assert_eq!(
            Reader::for_principal(&Principal::anonymous_guest(), true),
            None
        );
    }

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(GrantLevel::Read < GrantLevel::Write && GrantLevel::Write < GrantLevel::Admin);
        for l in GrantLevel::ALL {
            assert_eq!(l.as_str().parse(), Ok(l));
        }
        assert_eq!("owner".parse::<GrantLevel>(), Err(()));
    }
}
