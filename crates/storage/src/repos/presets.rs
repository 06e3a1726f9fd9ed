//! `PresetRepository` on SQLite: a reader sees their own presets, every
//! public one and, reading everything, all of them; the rest is
//! `NotFound`.

use diesel::prelude::*;
use offgrid_domain::repo::PresetRepository;
use offgrid_domain::workspace::{Cursor, CursorPage, OwnerRef, Preset, PresetFields, Reader};
use offgrid_domain::{PresetId, RepoError, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::schema::{presets, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = presets)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct PresetRow {
    id: String,
    owner_id: String,
    name: String,
    system_prompt: String,
    model: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<i64>,
    is_public: bool,
    created_at: i64,
    updated_at: i64,
}

fn preset((row, username): (PresetRow, String)) -> Preset {
    Preset {
        id: PresetId::from_string(row.id),
        owner: OwnerRef {
            id: UserId::from_string(row.owner_id),
            username,
        },
        fields: PresetFields {
            name: row.name,
            system_prompt: row.system_prompt,
            model: row.model,
            temperature: row.temperature,
            top_p: row.top_p,
            max_tokens: row.max_tokens,
            is_public: row.is_public,
        },
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
    }
}

/// Presets with their owner's name, filtered to what the reader may see.
macro_rules! visible {
    ($reader:expr) => {{
        let query = presets::table
            .inner_join(users::table)
            .select((PresetRow::as_select(), users::username))
            .into_boxed();
        if $reader.sees_all() {
            query
        } else {
            let me = $reader.user_id().as_str().to_owned();
            query.filter(presets::owner_id.eq(me).or(presets::is_public.eq(true)))
        }
    }};
}

fn load(conn: &mut SqliteConnection, reader: &Reader, id: &PresetId) -> QueryResult<Preset> {
    visible!(reader)
        .filter(presets::id.eq(id.as_str().to_owned()))
        .get_result::<(PresetRow, String)>(conn)
        .map(preset)
}

impl PresetRepository for Database {
    fn create(
        &self,
        owner: &UserId,
        fields: &PresetFields,
        now: Timestamp,
    ) -> Result<Preset, RepoError> {
        let id = PresetId::generate();
        self.write(|conn| {
            diesel::insert_into(presets::table)
                .values((
                    presets::id.eq(id.as_str()),
                    presets::owner_id.eq(owner.as_str()),
                    presets::name.eq(&fields.name),
                    presets::system_prompt.eq(&fields.system_prompt),
                    presets::model.eq(&fields.model),
                    presets::temperature.eq(fields.temperature),
                    presets::top_p.eq(fields.top_p),
                    presets::max_tokens.eq(fields.max_tokens),
                    presets::is_public.eq(fields.is_public),
                    presets::created_at.eq(now.0),
                    presets::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load(conn, &Reader::user(owner.clone()), &id)?)
        })
    }

    fn get(&self, reader: &Reader, id: &PresetId) -> Result<Preset, RepoError> {
        self.read(|conn| load(conn, reader, id))
    }

    fn list(
        &self,
        reader: &Reader,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Preset>, RepoError> {
        let limit = limit.clamp(1, 1000);
        let rows = self.read(|conn| {
            // Listings show one's own and the public presets, for an Admin
            // too; `get` is where an Admin reaches the rest.
            let me = reader.user_id().as_str().to_owned();
            let mut q =
                visible!(reader).filter(presets::owner_id.eq(me).or(presets::is_public.eq(true)));
            if let Some(Cursor { updated_at, id }) = cursor {
                q = q.filter(
                    presets::updated_at.lt(*updated_at).or(presets::updated_at
                        .eq(*updated_at)
                        .and(presets::id.lt(id.clone()))),
                );
            }
            q.order((presets::updated_at.desc(), presets::id.desc()))
                .limit(limit + 1)
                .load::<(PresetRow, String)>(conn)
        })?;
        let mut data: Vec<Preset> = rows.into_iter().map(preset).collect();
        let next_cursor = if data.len() as i64 > limit {
            data.truncate(limit as usize);
            data.last().map(|p| Cursor {
                updated_at: p.updated_at.0,
                id: p.id.as_str().to_owned(),
            })
        } else {
            None
        };
        Ok(CursorPage { data, next_cursor })
    }

    fn update(
        &self,
        reader: &Reader,
        id: &PresetId,
        fields: &PresetFields,
        now: Timestamp,
    ) -> Result<Preset, RepoError> {
        self.write(|conn| {
            load(conn, reader, id).map_err(TxError::from)?;
            diesel::update(presets::table.find(id.as_str()))
                .set((
                    presets::name.eq(&fields.name),
                    presets::system_prompt.eq(&fields.system_prompt),
                    presets::model.eq(&fields.model),
                    presets::temperature.eq(fields.temperature),
                    presets::top_p.eq(fields.top_p),
                    presets::max_tokens.eq(fields.max_tokens),
                    presets::is_public.eq(fields.is_public),
                    presets::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load(conn, reader, id)?)
        })
    }

    fn delete(&self, reader: &Reader, id: &PresetId) -> Result<(), RepoError> {
        self.write(|conn| {
            load(conn, reader, id).map_err(TxError::from)?;
            diesel::delete(presets::table.find(id.as_str())).execute(conn)?;
            Ok(())
        })
    }
}
