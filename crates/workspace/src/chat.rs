//! A chat completion inside a session or with a preset: what comes before
//! the request's own messages ([`Workspace::chat_context`]), and saving
//! the exchange afterwards ([`Workspace::save_exchange`]).
//!
//! Chatting into a session needs write access to it (it changes the
//! session); a session the caller cannot see is `NotFound`, one they can
//! only read is `Forbidden`. A preset must be one the caller may read
//! (their own or a public one).

use offgrid_domain::workspace::{ChatMessage, GrantLevel, NewChatMessage, Preset, Reader};
use offgrid_domain::{ChatSessionId, PresetId, RepoError};

use crate::sessions::{MAX_ID_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGES_AT_ONCE, SessionView};
use crate::{Actor, Workspace, WorkspaceError, now};

/// The most stored history read for one chat, in bytes of message text:
/// more than the contexts of the models this server runs hold (128k tokens
/// of text at about four bytes each), so only the inference crate's
/// trimming decides what the model sees, but bounded whatever the
/// session's length.
pub const MAX_HISTORY_BYTES: usize = 512 * 1024;

/// What comes before a request's messages.
#[derive(Debug, Clone)]
pub struct ChatContext {
    /// The session chatted into.
    pub session: Option<SessionView>,
    /// The preset in force: the request's, else the session's.
    pub preset: Option<Preset>,
    /// The session's latest messages, oldest first.
    pub history: Vec<ChatMessage>,
    /// Older messages left out by [`MAX_HISTORY_BYTES`].
    pub omitted: usize,
}

fn session_id(id: &str) -> Result<ChatSessionId, WorkspaceError> {
    // An id this server never gives out names nothing.
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(WorkspaceError::NotFound);
    }
    Ok(ChatSessionId::from_string(id))
}

impl Workspace {
    /// The session (write access needed) and preset a chat names, with
    /// the session's history. `new` are the request's messages, checked
    /// here so that what cannot be saved is refused before any work.
    pub fn chat_context(
        &self,
        actor: &Actor,
        session: Option<&str>,
        preset: Option<&str>,
        new: &[NewChatMessage],
    ) -> Result<ChatContext, WorkspaceError> {
        let mut context = ChatContext {
            session: None,
            preset: None,
            history: Vec::new(),
            omitted: 0,
        };
        let mut session_preset = None;
        if let Some(id) = session {
            let id = session_id(id)?;
            let (reader, view) = self.open(
                actor,
                &id,
                GrantLevel::Write,
                "chatting in a session needs write access to it",
            )?;
            if !view.messages_readable {
                return Err(WorkspaceError::Forbidden(
                    "this server keeps other users' messages private from administrators",
                ));
            }
            if new.len() >= MAX_MESSAGES_AT_ONCE {
                return Err(WorkspaceError::invalid(
                    "messages",
                    format!(
                        "a chat in a session saves at most {} new messages with its answer",
                        MAX_MESSAGES_AT_ONCE - 1
                    ),
                ));
            }
            if new.iter().any(|m| m.content.len() > MAX_MESSAGE_BYTES) {
                return Err(WorkspaceError::invalid(
                    "messages",
                    format!("a message saved in a session holds at most {MAX_MESSAGE_BYTES} bytes"),
                ));
            }
            let (history, omitted) = self
                .chats
                .recent_messages(&reader, &id, MAX_HISTORY_BYTES)?;
            session_preset = view.session.preset_id.clone().map(|p| {
                // The session's preset is one its owner may use.
                (Reader::user(view.session.owner.id.clone()), p)
            });
            context.history = history;
            context.omitted = omitted;
            context.session = Some(view);
        }
        context.preset = match (preset, session_preset) {
            (Some(id), _) => {
                if id.is_empty() || id.len() > MAX_ID_BYTES {
                    return Err(WorkspaceError::NotFound);
                }
                Some(self.get_preset(actor, &PresetId::from_string(id))?)
            }
            (None, Some((owner, id))) => match self.presets.get(&owner, &PresetId::from_string(id))
            {
                Ok(p) => Some(p),
                // Gone or made private since: the session goes on without.
                Err(RepoError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            (None, None) => None,
        };
        Ok(context)
    }

    /// Saves a chat's new messages and its answer in the session, in one
    /// transaction, if the caller still has write access.
    pub fn save_exchange(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        messages: &[NewChatMessage],
    ) -> Result<(), WorkspaceError> {
        let (reader, _) = self.open(
            actor,
            id,
            GrantLevel::Write,
            "chatting in a session needs write access to it",
        )?;
        if messages.len() > MAX_MESSAGES_AT_ONCE {
            return Err(WorkspaceError::invalid(
                "messages",
                format!("at most {MAX_MESSAGES_AT_ONCE} messages at once"),
            ));
        }
        self.chats.append(&reader, id, messages, now())?;
        Ok(())
    }
}
