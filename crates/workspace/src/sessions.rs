//! Chat sessions: create, list, read, change, delete, add messages, and
//! share. The repository hides what the caller may not see at all; here
//! each action checks the level it needs:
//!
//! | action | needs |
//! |---|---|
//! | read, export, list | read (a share at any level, the owner, an admin) |
//! | add messages, change model or preset | write |
//! | rename, see and manage shares | admin |
//! | delete | the owner or an Admin |
//!
//! A Viewer's share counts as read whatever its stored level. An Admin
//! sees every session's title and count and may delete it; with
//! `admin_can_read_chats` on they may do everything else too, with it off
//! only what a share gives them (as for anyone).

use offgrid_domain::workspace::{
    ChatMessage, ChatSession, ChatSessionPatch, Cursor, CursorPage, Grant, GrantLevel, Listing,
    NewChatMessage, NewChatSession, Reader, ResourceKind, SessionQuery, Visible,
};
use offgrid_domain::{ChatSessionId, Permission, PresetId, Principal, RepoError, UserId};
use offgrid_policy::authorize;

pub(crate) use crate::shares::reader;
pub use crate::shares::{SessionPermission, ShareTarget};
use crate::{Actor, Workspace, WorkspaceError, now};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest model or preset id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Largest page.
pub const MAX_PAGE: i64 = 100;
/// Longest message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most messages added at once.
pub const MAX_MESSAGES_AT_ONCE: usize = 64;
/// The title of a session created without one.
pub const DEFAULT_TITLE: &str = "New chat";

/// A session as its caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The session.
    pub session: ChatSession,
    /// The caller's standing.
    pub permission: SessionPermission,
    /// Whether the caller may read its messages.
    pub messages_readable: bool,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Sessions shared with the caller instead of their own.
    pub shared: bool,
    /// Every user's (administrators).
    pub all: bool,
    /// Text in the title.
    pub q: Option<String>,
    /// Page size (default 50, at most [`MAX_PAGE`]).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListRequest {
    /// The request checked for `principal`: the reader (seeing everything
    /// only for `all`, which is for administrators), which rows, the page
    /// size and where the page starts.
    pub(crate) fn resolve(
        &self,
        principal: &Principal,
    ) -> Result<(Reader, Listing, i64, Option<Cursor>), WorkspaceError> {
        let request = self;
        if request.all && authorize(principal, Permission::AllSessions).is_err() {
            return Err(WorkspaceError::Forbidden("all=true is for administrators"));
        }
        let reader = reader(principal, request.all)?;
        let listing = match (request.shared, request.all) {
            (true, _) => Listing::SharedWithMe,
            (false, true) => Listing::All,
            (false, false) => Listing::Own,
        };
        if let Some(q) = &request.q
            && q.chars().count() > MAX_QUERY_CHARS
        {
            return Err(WorkspaceError::invalid(
                "q",
                format!("at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let limit = crate::collections::page_limit(request.limit)?;
        let cursor = crate::collections::cursor(request.cursor.as_deref())?;
        Ok((reader, listing, limit, cursor))
    }
}

fn title(text: Option<&str>) -> Result<String, WorkspaceError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.chars().count() > MAX_TITLE_CHARS {
        return Err(WorkspaceError::invalid(
            "title",
            format!("at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(WorkspaceError::invalid(
            "title",
            "control characters are not allowed",
        ));
    }
    Ok(if text.is_empty() {
        DEFAULT_TITLE.to_owned()
    } else {
        text.to_owned()
    })
}

fn model(model: Option<&str>) -> Result<Option<String>, WorkspaceError> {
    match model {
        None => Ok(None),
        Some(m) if m.is_empty() || m.len() > MAX_ID_BYTES => Err(WorkspaceError::invalid(
            "model",
            format!("a model id of 1 to {MAX_ID_BYTES} bytes"),
        )),
        Some(m) => Ok(Some(m.to_owned())),
    }
}

impl Workspace {
    /// A preset id `user` may use (their own or a public one).
    fn preset(&self, user: &Reader, id: Option<&str>) -> Result<Option<String>, WorkspaceError> {
        let Some(id) = id else { return Ok(None) };
        let user = Reader::user(user.user_id().clone());
        match self.presets.get(&user, &PresetId::from_string(id)) {
            Ok(p) => Ok(Some(p.id.as_str().to_owned())),
            Err(RepoError::NotFound) => Err(WorkspaceError::invalid("preset_id", "no such preset")),
            Err(e) => Err(e.into()),
        }
    }

    fn view(&self, principal: &Principal, v: Visible<ChatSession>) -> Option<SessionView> {
        let (permission, messages_readable) =
            self.standing(principal, &v.item.owner.id, v.shared)?;
        Some(SessionView {
            session: v.item,
            permission,
            messages_readable,
        })
    }

    /// The session if the caller holds at least `needed`: `NotFound` when
    /// they cannot see it, `Forbidden(why)` when they can but not enough.
    pub(crate) fn open(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        needed: GrantLevel,
        why: &'static str,
    ) -> Result<(Reader, SessionView), WorkspaceError> {
        let reader = reader(&actor.principal, true)?;
        let visible = self.chats.get(&reader, id)?;
        let view = self
            .view(&actor.principal, visible)
            .ok_or(WorkspaceError::NotFound)?;
        if view.permission.level() < needed {
            return Err(WorkspaceError::Forbidden(why));
        }
        Ok((reader, view))
    }

    /// Starts a session owned by the caller.
    pub fn create_session(
        &self,
        actor: &Actor,
        title_text: Option<&str>,
        model_id: Option<&str>,
        preset_id: Option<&str>,
    ) -> Result<SessionView, WorkspaceError> {
        let reader = reader(&actor.principal, false)?;
        authorize(&actor.principal, Permission::OwnSessions).map_err(|_| {
            WorkspaceError::Forbidden("creating sessions needs the own_sessions permission")
        })?;
        let new = NewChatSession {
            owner: reader.user_id().clone(),
            title: title(title_text)?,
            model: model(model_id)?,
            preset_id: self.preset(&reader, preset_id)?,
        };
        let session = self.chats.create(new, now())?;
        Ok(SessionView {
            session,
            permission: SessionPermission::Owner,
            messages_readable: true,
        })
    }

    /// A page of sessions, most recently changed first.
    pub fn list_sessions(
        &self,
        actor: &Actor,
        request: &ListRequest,
    ) -> Result<CursorPage<SessionView>, WorkspaceError> {
        let principal = &actor.principal;
        let (reader, listing, limit, cursor) = request.resolve(principal)?;
        let page = self.chats.list(
            &reader,
            &SessionQuery {
                listing,
                q: request.q.clone(),
                limit,
                cursor,
            },
        )?;
        Ok(CursorPage {
            data: page
                .data
                .into_iter()
                .filter_map(|v| self.view(principal, v))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// One session, with its messages when the caller may read them.
    pub fn get_session(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
    ) -> Result<(SessionView, Option<Vec<ChatMessage>>), WorkspaceError> {
        let (reader, view) = self.open(actor, id, GrantLevel::Read, "")?;
        let messages = if view.messages_readable {
            Some(self.chats.messages(&reader, id)?)
        } else {
            None
        };
        Ok((view, messages))
    }

    /// The messages, for export and for chat history; `Forbidden` for an
    /// administrator who may see the session but not its messages.
    pub fn messages(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
    ) -> Result<(SessionView, Vec<ChatMessage>), WorkspaceError> {
        let (view, messages) = self.get_session(actor, id)?;
        let messages = messages.ok_or(WorkspaceError::Forbidden(
            "this server keeps other users' messages private from administrators",
        ))?;
        Ok((view, messages))
    }

    /// Renames a session (admin level) or changes its model or preset
    /// (write level).
    pub fn update_session(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        title_text: Option<&str>,
        model_id: Option<Option<&str>>,
        preset_id: Option<Option<&str>>,
    ) -> Result<SessionView, WorkspaceError> {
        let (needed, why) = if title_text.is_some() {
            (
                GrantLevel::Admin,
                "renaming needs admin access to the session",
            )
        } else {
            (
                GrantLevel::Write,
                "changing it needs write access to the session",
            )
        };
        let (reader, view) = self.open(actor, id, needed, why)?;
        // The preset must be one the session's owner may use, whoever sets it.
        let owner = Reader::user(view.session.owner.id.clone());
        let patch = ChatSessionPatch {
            title: title_text.map(|t| title(Some(t))).transpose()?,
            model: model_id.map(model).transpose()?,
            preset_id: preset_id.map(|p| self.preset(&owner, p)).transpose()?,
        };
        let session = self.chats.update(&reader, id, &patch, now())?;
        Ok(SessionView { session, ..view })
    }

    /// Deletes a session: its owner or an Admin only.
    pub fn delete_session(&self, actor: &Actor, id: &ChatSessionId) -> Result<(), WorkspaceError> {
        let (reader, view) = self.open(actor, id, GrantLevel::Read, "")?;
        let admin = authorize(&actor.principal, Permission::AllSessions).is_ok();
        if view.permission != SessionPermission::Owner && !admin {
            return Err(WorkspaceError::Forbidden(
                "only the owner or an administrator deletes a session",
            ));
        }
        self.chats.delete(&reader, id)?;
        if view.permission != SessionPermission::Owner {
            self.record(
                actor,
                "session.deleted",
                format!("session:{id}"),
                serde_json::json!({"owner": view.session.owner.username}),
            );
        }
        Ok(())
    }

    /// Appends messages (write level).
    pub fn add_messages(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        messages: &[NewChatMessage],
    ) -> Result<Vec<ChatMessage>, WorkspaceError> {
        if messages.is_empty() || messages.len() > MAX_MESSAGES_AT_ONCE {
            return Err(WorkspaceError::invalid(
                "messages",
                format!("1 to {MAX_MESSAGES_AT_ONCE} messages"),
            ));
        }
        if messages.iter().any(|m| m.content.len() > MAX_MESSAGE_BYTES) {
            return Err(WorkspaceError::invalid(
                "content",
                format!("at most {MAX_MESSAGE_BYTES} bytes"),
            ));
        }
        let (reader, _) = self.open(
            actor,
            id,
            GrantLevel::Write,
            "adding messages needs write access to the session",
        )?;
        Ok(self.chats.append(&reader, id, messages, now())?)
    }

    /// Shares a session (admin level), or changes a share's level. `true`
    /// when the share is new.
    pub fn share_session(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        target: &ShareTarget,
        level: GrantLevel,
    ) -> Result<(Grant, bool), WorkspaceError> {
        let (_, view) = self.open(
            actor,
            id,
            GrantLevel::Admin,
            "sharing needs admin access to the session",
        )?;
        self.share(
            actor,
            ResourceKind::Session,
            id.as_str(),
            &view.session.owner.id,
            view.permission,
            target,
            level,
        )
    }

    /// The shares of a session (admin level).
    pub fn session_shares(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
    ) -> Result<Vec<Grant>, WorkspaceError> {
        self.open(
            actor,
            id,
            GrantLevel::Admin,
            "seeing the shares needs admin access to the session",
        )?;
        Ok(self.grants.grants(ResourceKind::Session, id.as_str())?)
    }

    /// Ends a share (admin level, or the one it is shared with, leaving).
    pub fn revoke_session_share(
        &self,
        actor: &Actor,
        id: &ChatSessionId,
        user: &UserId,
    ) -> Result<(), WorkspaceError> {
        let leaving = actor.principal.user_id.as_ref() == Some(user);
        let needed = if leaving {
            GrantLevel::Read
        } else {
            GrantLevel::Admin
        };
        self.open(
            actor,
            id,
            needed,
            "managing shares needs admin access to the session",
        )?;
        self.unshare(actor, ResourceKind::Session, id.as_str(), user)
    }
}
