//! What sessions and collections have in common: the caller's standing on
//! a resource someone owns, and sharing it. The service modules open the
//! resource through its repository (which hides what the caller may not
//! see at all), then call these with its owner and the caller's grant.

use offgrid_domain::workspace::{Grant, GrantLevel, Reader, ResourceKind};
use offgrid_domain::{Permission, Principal, RepoError, Role, UserId};
use offgrid_policy::{Access, authorize, resource_access};

use crate::{Actor, Workspace, WorkspaceError, now};

/// The caller's standing on a session or a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPermission {
    /// They own it.
    Owner,
    /// An administrator, or a share at admin level.
    Admin,
    /// A share at write level.
    Write,
    /// A share at read level (or a Viewer's share).
    Read,
}

impl SessionPermission {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionPermission::Owner => "owner",
            SessionPermission::Admin => "admin",
            SessionPermission::Write => "write",
            SessionPermission::Read => "read",
        }
    }

    /// The share level this standing amounts to.
    pub(crate) fn level(self) -> GrantLevel {
        match self {
            SessionPermission::Owner | SessionPermission::Admin => GrantLevel::Admin,
            SessionPermission::Write => GrantLevel::Write,
            SessionPermission::Read => GrantLevel::Read,
        }
    }
}

/// Whom to share with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareTarget {
    /// By login name.
    Username(String),
    /// By id.
    UserId(UserId),
}

/// The caller as a reader of shareable resources; guests have none.
pub(crate) fn reader(principal: &Principal, all: bool) -> Result<Reader, WorkspaceError> {
    if principal.role == Role::Guest {
        return Err(WorkspaceError::Forbidden("guests have no workspace"));
    }
    Reader::for_principal(principal, all)
        .ok_or(WorkspaceError::Forbidden("sign in to use the workspace"))
}

impl Workspace {
    /// The caller's standing on a resource `owner` owns and they can see
    /// (holding `shared`), and whether they may read its contents
    /// (messages, documents); `None` if the policy gives them nothing.
    ///
    /// An Admin sees every resource's name and counts and may delete it;
    /// with `admin_can_read_chats` on they may do everything else too, with
    /// it off only what a share gives them (as anyone), so an admin cannot
    /// share a resource to someone and read it through them.
    pub(crate) fn standing(
        &self,
        principal: &Principal,
        owner: &UserId,
        shared: Option<GrantLevel>,
    ) -> Option<(SessionPermission, bool)> {
        if principal.user_id.as_ref() == Some(owner) {
            return Some((SessionPermission::Owner, true));
        }
        let Access::Granted(_) = resource_access(principal, owner, shared, Permission::AllSessions)
        else {
            return None;
        };
        let admin = authorize(principal, Permission::AllSessions).is_ok();
        let role_counts = admin && self.config.admin_can_read_chats;
        let permission = match shared {
            _ if role_counts => SessionPermission::Admin,
            None => SessionPermission::Read,
            _ if principal.role == Role::Viewer => SessionPermission::Read,
            Some(GrantLevel::Admin) => SessionPermission::Admin,
            Some(GrantLevel::Write) => SessionPermission::Write,
            Some(GrantLevel::Read) => SessionPermission::Read,
        };
        Some((permission, shared.is_some() || role_counts))
    }

    /// Shares a resource the caller holds `mine` on (checked: admin level)
    /// with `target` at `level`, or changes the level of their share;
    /// audited. `true` when the share is new.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn share(
        &self,
        actor: &Actor,
        kind: ResourceKind,
        id: &str,
        owner: &UserId,
        mine: SessionPermission,
        target: &ShareTarget,
        level: GrantLevel,
    ) -> Result<(Grant, bool), WorkspaceError> {
        if level > mine.level() {
            return Err(WorkspaceError::Forbidden(
                "a share cannot be above your own access",
            ));
        }
        let user = match target {
            ShareTarget::UserId(uid) => self.users.get(uid),
            ShareTarget::Username(name) => self.users.get_by_username(name),
        }
        .map_err(|e| match e {
            RepoError::NotFound => WorkspaceError::UserNotFound,
            e => e.into(),
        })?;
        if user.system {
            return Err(WorkspaceError::UserNotFound);
        }
        if actor.principal.user_id.as_ref() == Some(&user.id) {
            return Err(WorkspaceError::invalid(
                "user",
                "you cannot share with yourself",
            ));
        }
        if &user.id == owner {
            return Err(WorkspaceError::invalid(
                "user",
                format!("that user owns the {}", noun(kind)),
            ));
        }
        if user.disabled {
            return Err(WorkspaceError::invalid("user", "that account is disabled"));
        }
        if user.role == Role::Guest {
            return Err(WorkspaceError::invalid(
                "user",
                "guest accounts have no workspace",
            ));
        }
        // A Viewer reads, whatever they are given.
        let level = if user.role == Role::Viewer {
            GrantLevel::Read
        } else {
            level
        };
        let (grant, created) = self.grants.grant(kind, id, &user.id, level, now())?;
        self.record(
            actor,
            if created {
                "share.granted"
            } else {
                "share.changed"
            },
            format!("{}:{id}", kind.as_str()),
            serde_json::json!({"user": user.username, "permission": level.as_str()}),
        );
        Ok((grant, created))
    }

    /// Ends `user`'s share of a resource (the caller's standing was
    /// checked); audited. `NotFound` when there was none.
    pub(crate) fn unshare(
        &self,
        actor: &Actor,
        kind: ResourceKind,
        id: &str,
        user: &UserId,
    ) -> Result<(), WorkspaceError> {
        if !self.grants.revoke(kind, id, user)? {
            return Err(WorkspaceError::NotFound);
        }
        self.record(
            actor,
            "share.revoked",
            format!("{}:{id}", kind.as_str()),
            serde_json::json!({"user_id": user.as_str()}),
        );
        Ok(())
    }
}

/// The kind's name in messages.
fn noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Session => "session",
        ResourceKind::Collection => "collection",
    }
}
