//! RAG collections and their documents: create, list, read, change,
//! delete, add and remove documents, and share. As for sessions, the
//! repository hides what the caller may not see at all, and each action
//! checks the level it needs:
//!
//! | action | needs |
//! |---|---|
//! | read, list documents, search, use in chat | read |
//! | add and remove documents | write |
//! | rename, describe, see and manage shares | admin |
//! | delete | the owner or an Admin |
//!
//! Creating a collection takes the `use_rag` permission (Users and
//! Admins); a Viewer reads what is shared with them.

use offgrid_domain::rag::{
    Collection, CollectionPatch, CollectionQuery, Document, NewCollection, NewDocument,
};
use offgrid_domain::workspace::{Cursor, CursorPage, Grant, GrantLevel, Reader, ResourceKind};
use offgrid_domain::{CollectionId, DocumentId, Permission, UserId};
use offgrid_policy::authorize;

use crate::sessions::{ListRequest, MAX_PAGE};
use crate::shares::{SessionPermission, ShareTarget, reader};
use crate::{Actor, Workspace, WorkspaceError, now};

/// Longest collection name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest document name, in characters.
pub const MAX_DOCUMENT_NAME_CHARS: usize = 255;

/// A collection as its caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionView {
    /// The collection.
    pub collection: Collection,
    /// The caller's standing.
    pub permission: SessionPermission,
    /// Whether the caller may read its documents (and search them).
    pub readable: bool,
}

fn text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<String, WorkspaceError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(WorkspaceError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(WorkspaceError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    // Control characters, and the invisible ones that reorder or hide
    // text (bidirectional overrides, zero-width marks, line separators).
    let control = |c: char| {
        (c.is_control() && !(field == "description" && c == '\n'))
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if value.chars().any(control) {
        return Err(WorkspaceError::invalid(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(value.to_owned())
}

/// A document's name as stored: the file name without its folders, at
/// most [`MAX_DOCUMENT_NAME_CHARS`], without control characters.
pub fn document_name(name: &str) -> Result<String, WorkspaceError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    text("name", base, MAX_DOCUMENT_NAME_CHARS, true)
}

pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, WorkspaceError> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(WorkspaceError::invalid(
            "limit",
            format!("between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

pub(crate) fn cursor(text: Option<&str>) -> Result<Option<Cursor>, WorkspaceError> {
    text.map(|t| {
        Cursor::decode(t)
            .ok_or_else(|| WorkspaceError::invalid("cursor", "not a cursor this server gave out"))
    })
    .transpose()
}

impl Workspace {
    fn collection_view(
        &self,
        actor: &Actor,
        v: offgrid_domain::workspace::Visible<Collection>,
    ) -> Option<CollectionView> {
        let (permission, readable) = self.standing(&actor.principal, &v.item.owner.id, v.shared)?;
        Some(CollectionView {
            collection: v.item,
            permission,
            readable,
        })
    }

    /// The collection if the caller holds at least `needed` (and, for
    /// `contents`, may read its documents): `NotFound` when they cannot
    /// see it, `Forbidden(why)` when they can but not enough.
    pub(crate) fn open_collection(
        &self,
        actor: &Actor,
        id: &CollectionId,
        needed: GrantLevel,
        contents: bool,
        why: &'static str,
    ) -> Result<(Reader, CollectionView), WorkspaceError> {
        let reader = reader(&actor.principal, true)?;
        let visible = self.collections.get(&reader, id)?;
        let view = self
            .collection_view(actor, visible)
            .ok_or(WorkspaceError::NotFound)?;
        if view.permission.level() < needed {
            return Err(WorkspaceError::Forbidden(why));
        }
        if contents && !view.readable {
            return Err(WorkspaceError::Forbidden(
                "this server keeps other users' documents private from administrators",
            ));
        }
        Ok((reader, view))
    }

    /// Creates a collection owned by the caller.
    pub fn create_collection(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
    ) -> Result<CollectionView, WorkspaceError> {
        let reader = reader(&actor.principal, false)?;
        authorize(&actor.principal, Permission::UseRag).map_err(|_| {
            WorkspaceError::Forbidden("creating collections needs the use_rag permission")
        })?;
        let new = NewCollection {
            owner: reader.user_id().clone(),
            name: text("name", name, MAX_NAME_CHARS, true)?,
            description: text(
                "description",
                description.unwrap_or_default(),
                MAX_DESCRIPTION_CHARS,
                false,
            )?,
        };
        let collection = self.collections.create(new, now())?;
        Ok(CollectionView {
            collection,
            permission: SessionPermission::Owner,
            readable: true,
        })
    }

    /// A page of collections, most recently changed first.
    pub fn list_collections(
        &self,
        actor: &Actor,
        request: &ListRequest,
    ) -> Result<CursorPage<CollectionView>, WorkspaceError> {
        let (reader, listing, limit, cursor) = request.resolve(&actor.principal)?;
        let page = self.collections.list(
            &reader,
            &CollectionQuery {
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
                .filter_map(|v| self.collection_view(actor, v))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// One collection.
    pub fn get_collection(
        &self,
        actor: &Actor,
        id: &CollectionId,
    ) -> Result<CollectionView, WorkspaceError> {
        Ok(self
            .open_collection(actor, id, GrantLevel::Read, false, "")?
            .1)
    }

    /// Renames or describes a collection (admin level).
    pub fn update_collection(
        &self,
        actor: &Actor,
        id: &CollectionId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<CollectionView, WorkspaceError> {
        let (reader, view) = self.open_collection(
            actor,
            id,
            GrantLevel::Admin,
            false,
            "changing it needs admin access to the collection",
        )?;
        let patch = CollectionPatch {
            name: name
                .map(|n| text("name", n, MAX_NAME_CHARS, true))
                .transpose()?,
            description: description
                .map(|d| text("description", d, MAX_DESCRIPTION_CHARS, false))
                .transpose()?,
        };
        let collection = self.collections.update(&reader, id, &patch, now())?;
        Ok(CollectionView { collection, ..view })
    }

    /// Deletes a collection with its documents: its owner or an Admin.
    pub fn delete_collection(
        &self,
        actor: &Actor,
        id: &CollectionId,
    ) -> Result<(), WorkspaceError> {
        let (reader, view) = self.open_collection(actor, id, GrantLevel::Read, false, "")?;
        let admin = authorize(&actor.principal, Permission::AllSessions).is_ok();
        if view.permission != SessionPermission::Owner && !admin {
            return Err(WorkspaceError::Forbidden(
                "only the owner or an administrator deletes a collection",
            ));
        }
        self.collections.delete(&reader, id)?;
        self.retrieval.forget(id);
        self.indexer.cancel(id.as_str());
        if view.permission != SessionPermission::Owner {
            self.record(
                actor,
                "collection.deleted",
                format!("collection:{id}"),
                serde_json::json!({"owner": view.collection.owner.username}),
            );
        }
        Ok(())
    }

    /// Checks that the caller may add documents (write level), before an
    /// upload is read.
    pub fn check_upload(&self, actor: &Actor, id: &CollectionId) -> Result<(), WorkspaceError> {
        self.open_collection(
            actor,
            id,
            GrantLevel::Write,
            true,
            "adding documents needs write access to the collection",
        )?;
        Ok(())
    }

    /// Adds a document record as `indexing` (write level); the caller then
    /// hands its content to the indexer.
    pub fn add_document(
        &self,
        actor: &Actor,
        id: &CollectionId,
        name: &str,
        content_type: &str,
        bytes: usize,
    ) -> Result<Document, WorkspaceError> {
        let (reader, _) = self.open_collection(
            actor,
            id,
            GrantLevel::Write,
            true,
            "adding documents needs write access to the collection",
        )?;
        let new = NewDocument {
            name: document_name(name)?,
            content_type: content_type.chars().take(100).collect(),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        };
        Ok(self.collections.add_document(&reader, id, &new, now())?)
    }

    /// A page of a collection's documents, newest first (read level).
    pub fn documents(
        &self,
        actor: &Actor,
        id: &CollectionId,
        limit: Option<i64>,
        cursor_text: Option<&str>,
    ) -> Result<CursorPage<Document>, WorkspaceError> {
        let (reader, _) = self.open_collection(actor, id, GrantLevel::Read, true, "")?;
        Ok(self.collections.documents(
            &reader,
            id,
            page_limit(limit)?,
            cursor(cursor_text)?.as_ref(),
        )?)
    }

    /// One document (read level).
    pub fn document(
        &self,
        actor: &Actor,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<Document, WorkspaceError> {
        let (reader, _) = self.open_collection(actor, id, GrantLevel::Read, true, "")?;
        Ok(self.collections.document(&reader, id, document)?)
    }

    /// Removes a document and its chunks (write level).
    pub fn delete_document(
        &self,
        actor: &Actor,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<(), WorkspaceError> {
        let (reader, _) = self.open_collection(
            actor,
            id,
            GrantLevel::Write,
            true,
            "removing documents needs write access to the collection",
        )?;
        self.collections.delete_document(&reader, id, document)?;
        self.retrieval.forget(id);
        self.indexer.cancel(document.as_str());
        Ok(())
    }

    /// Shares a collection (admin level), or changes a share's level.
    /// `true` when the share is new.
    pub fn share_collection(
        &self,
        actor: &Actor,
        id: &CollectionId,
        target: &ShareTarget,
        level: GrantLevel,
    ) -> Result<(Grant, bool), WorkspaceError> {
        let (_, view) = self.open_collection(
            actor,
            id,
            GrantLevel::Admin,
            false,
            "sharing needs admin access to the collection",
        )?;
        self.share(
            actor,
            ResourceKind::Collection,
            id.as_str(),
            &view.collection.owner.id,
            view.permission,
            target,
            level,
        )
    }

    /// The shares of a collection (admin level).
    pub fn collection_shares(
        &self,
        actor: &Actor,
        id: &CollectionId,
    ) -> Result<Vec<Grant>, WorkspaceError> {
        self.open_collection(
            actor,
            id,
            GrantLevel::Admin,
            false,
            "seeing the shares needs admin access to the collection",
        )?;
        Ok(self.grants.grants(ResourceKind::Collection, id.as_str())?)
    }

    /// Ends a share (admin level, or the one it is shared with, leaving).
    pub fn revoke_collection_share(
        &self,
        actor: &Actor,
        id: &CollectionId,
        user: &UserId,
    ) -> Result<(), WorkspaceError> {
        let leaving = actor.principal.user_id.as_ref() == Some(user);
        let needed = if leaving {
            GrantLevel::Read
        } else {
            GrantLevel::Admin
        };
        self.open_collection(
            actor,
            id,
            needed,
            false,
            "managing shares needs admin access to the collection",
        )?;
        self.unshare(actor, ResourceKind::Collection, id.as_str(), user)
    }
}
