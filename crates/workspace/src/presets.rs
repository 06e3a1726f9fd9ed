//! Presets: a saved system prompt with generation parameters. Users and
//! Admins make them; everyone with an account sees their own and the
//! public ones; only the owner (or an Admin) changes or deletes one.

use offgrid_domain::workspace::{Cursor, CursorPage, Preset, PresetFields, Reader};
use offgrid_domain::{Permission, PresetId};
use offgrid_policy::authorize;

use crate::sessions::{MAX_ID_BYTES, MAX_PAGE, reader};
use crate::{Actor, Workspace, WorkspaceError, now};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest system prompt, in bytes.
pub const MAX_SYSTEM_PROMPT_BYTES: usize = 32 * 1024;
/// Largest `max_tokens` a preset may ask for.
pub const MAX_TOKENS: i64 = 1 << 20;

/// Checks every field: `Invalid` naming the first bad one.
pub fn validate(fields: &PresetFields) -> Result<(), WorkspaceError> {
    let name = fields.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(WorkspaceError::invalid(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if fields.system_prompt.len() > MAX_SYSTEM_PROMPT_BYTES {
        return Err(WorkspaceError::invalid(
            "system_prompt",
            format!("at most {MAX_SYSTEM_PROMPT_BYTES} bytes"),
        ));
    }
    if let Some(m) = &fields.model
        && (m.is_empty() || m.len() > MAX_ID_BYTES)
    {
        return Err(WorkspaceError::invalid(
            "model",
            format!("a model id of 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    if let Some(t) = fields.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(WorkspaceError::invalid("temperature", "between 0 and 2"));
    }
    if let Some(p) = fields.top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(WorkspaceError::invalid(
            "top_p",
            "greater than 0 and at most 1",
        ));
    }
    if let Some(n) = fields.max_tokens
        && !(1..=MAX_TOKENS).contains(&n)
    {
        return Err(WorkspaceError::invalid(
            "max_tokens",
            format!("between 1 and {MAX_TOKENS}"),
        ));
    }
    Ok(())
}

impl Workspace {
    /// Saves a preset owned by the caller.
    pub fn create_preset(
        &self,
        actor: &Actor,
        fields: &PresetFields,
    ) -> Result<Preset, WorkspaceError> {
        let reader = reader(&actor.principal, false)?;
        authorize(&actor.principal, Permission::OwnSessions).map_err(|_| {
            WorkspaceError::Forbidden("creating presets needs the own_sessions permission")
        })?;
        validate(fields)?;
        let fields = PresetFields {
            name: fields.name.trim().to_owned(),
            ..fields.clone()
        };
        Ok(self.presets.create(reader.user_id(), &fields, now())?)
    }

    /// The caller's own and the public presets, newest change first.
    pub fn list_presets(
        &self,
        actor: &Actor,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> Result<CursorPage<Preset>, WorkspaceError> {
        let reader = reader(&actor.principal, false)?;
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(WorkspaceError::invalid(
                "limit",
                format!("between 1 and {MAX_PAGE}"),
            ));
        }
        let cursor = cursor
            .map(|text| {
                Cursor::decode(text).ok_or_else(|| {
                    WorkspaceError::invalid("cursor", "not a cursor this server gave out")
                })
            })
            .transpose()?;
        Ok(self.presets.list(&reader, limit, cursor.as_ref())?)
    }

    /// One preset the caller can see (their own, a public one, or any for
    /// an Admin).
    pub fn get_preset(&self, actor: &Actor, id: &PresetId) -> Result<Preset, WorkspaceError> {
        let reader = reader(&actor.principal, true)?;
        Ok(self.presets.get(&reader, id)?)
    }

    /// The preset if the caller may change it: `NotFound` if they cannot
    /// see it, `Forbidden` if it is someone else's public preset.
    fn own_preset(&self, actor: &Actor, id: &PresetId) -> Result<Reader, WorkspaceError> {
        let reader = reader(&actor.principal, true)?;
        let preset = self.presets.get(&reader, id)?;
        let mine = actor.principal.user_id.as_ref() == Some(&preset.owner.id);
        if !mine && authorize(&actor.principal, Permission::AllSessions).is_err() {
            return Err(WorkspaceError::Forbidden(
                "public presets are read-only to everyone but their owner",
            ));
        }
        Ok(reader)
    }

    /// Replaces a preset's fields (the owner or an Admin).
    pub fn update_preset(
        &self,
        actor: &Actor,
        id: &PresetId,
        fields: &PresetFields,
    ) -> Result<Preset, WorkspaceError> {
        let reader = self.own_preset(actor, id)?;
        validate(fields)?;
        let fields = PresetFields {
            name: fields.name.trim().to_owned(),
            ..fields.clone()
        };
        Ok(self.presets.update(&reader, id, &fields, now())?)
    }

    /// Deletes a preset (the owner or an Admin); sessions that named it
    /// keep going without it.
    pub fn delete_preset(&self, actor: &Actor, id: &PresetId) -> Result<(), WorkspaceError> {
        let reader = self.own_preset(actor, id)?;
        Ok(self.presets.delete(&reader, id)?)
    }
}
