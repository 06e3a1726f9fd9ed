//! `ChatSessionRepository` on SQLite. Every query joins the reader's share
//! (if any) and keeps only rows the reader owns, was shared, or may see as
//! an administrator, so a hidden session is indistinguishable from a
//! missing one.

use diesel::prelude::*;
use offgrid_domain::repo::ChatSessionRepository;
use offgrid_domain::workspace::{
    ChatMessage, ChatSession, ChatSessionPatch, Cursor, CursorPage, Listing, MessageRole,
    MessageUsage, NewChatMessage, NewChatSession, OwnerRef, Reader, ResourceKind, SessionQuery,
    Visible,
};
use offgrid_domain::{ChatSessionId, RepoError, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::schema::{chat_messages, chat_sessions, grants, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chat_sessions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct SessionRow {
    id: String,
    owner_id: String,
    title: String,
    model: Option<String>,
    preset_id: Option<String>,
    message_count: i64,
    created_at: i64,
    updated_at: i64,
}

/// A session row with its owner's name and the reader's share level.
type Joined = (SessionRow, String, Option<String>);

fn visible((row, username, level): Joined) -> Visible<ChatSession> {
    Visible {
        item: ChatSession {
            id: ChatSessionId::from_string(row.id),
            title: row.title,
            model: row.model,
            preset_id: row.preset_id,
            owner: OwnerRef {
                id: UserId::from_string(row.owner_id),
                username,
            },
            message_count: row.message_count,
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        },
        shared: level.and_then(|l| l.parse().ok()),
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chat_messages)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct MessageRow {
    id: i64,
    role: String,
    content: String,
    created_at: i64,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    citations: Option<String>,
    interrupted: bool,
}

impl MessageRow {
    fn into_message(self) -> ChatMessage {
        ChatMessage {
            id: self.id,
            // The column's CHECK allows only the three names.
            role: self.role.parse().unwrap_or(MessageRole::User),
            content: self.content,
            created_at: Timestamp(self.created_at),
            model: self.model,
            usage: match (self.prompt_tokens, self.completion_tokens) {
                (Some(prompt_tokens), Some(completion_tokens)) => Some(MessageUsage {
                    prompt_tokens,
                    completion_tokens,
                }),
                _ => None,
            },
            citations: self.citations,
            interrupted: self.interrupted,
        }
    }
}

/// Sessions joined with their owner and the reader's share, filtered to
/// what the reader may see.
macro_rules! joined {
    ($reader:expr) => {{
        let me = $reader.user_id().as_str().to_owned();
        let query = chat_sessions::table
            .inner_join(users::table)
            .left_join(
                grants::table.on(grants::resource_type
                    .eq(ResourceKind::Session.as_str())
                    .and(grants::resource_id.eq(chat_sessions::id))
                    .and(grants::user_id.eq(me.clone()))),
            )
            .select((
                SessionRow::as_select(),
                users::username,
                grants::level.nullable(),
            ))
            .into_boxed();
        if $reader.sees_all() {
            query
        } else {
            query.filter(
                chat_sessions::owner_id
                    .eq(me)
                    .or(grants::user_id.is_not_null()),
            )
        }
    }};
}

fn load(
    conn: &mut SqliteConnection,
    reader: &Reader,
    id: &ChatSessionId,
) -> Result<Visible<ChatSession>, diesel::result::Error> {
    joined!(reader)
        .filter(chat_sessions::id.eq(id.as_str().to_owned()))
        .get_result::<Joined>(conn)
        .map(visible)
}

/// `NotFound` unless the reader can see the session.
fn check_visible(
    conn: &mut SqliteConnection,
    reader: &Reader,
    id: &ChatSessionId,
) -> Result<(), TxError> {
    load(conn, reader, id)?;
    Ok(())
}

impl ChatSessionRepository for Database {
    fn create(&self, new: NewChatSession, now: Timestamp) -> Result<ChatSession, RepoError> {
        let id = ChatSessionId::generate();
        let reader = Reader::user(new.owner.clone());
        self.write(|conn| {
            diesel::insert_into(chat_sessions::table)
                .values((
                    chat_sessions::id.eq(id.as_str()),
                    chat_sessions::owner_id.eq(new.owner.as_str()),
                    chat_sessions::title.eq(&new.title),
                    chat_sessions::model.eq(&new.model),
                    chat_sessions::preset_id.eq(&new.preset_id),
                    chat_sessions::created_at.eq(now.0),
                    chat_sessions::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load(conn, &reader, &id)?.item)
        })
    }

    fn get(&self, reader: &Reader, id: &ChatSessionId) -> Result<Visible<ChatSession>, RepoError> {
        self.read(|conn| load(conn, reader, id))
    }

    fn list(
        &self,
        reader: &Reader,
        query: &SessionQuery,
    ) -> Result<CursorPage<Visible<ChatSession>>, RepoError> {
        let me = reader.user_id().as_str().to_owned();
        let limit = query.limit.clamp(1, 1000);
        let rows = self.read(|conn| {
            let mut q = joined!(reader);
            q = match query.listing {
                Listing::All if reader.sees_all() => q,
                Listing::Own | Listing::All => q.filter(chat_sessions::owner_id.eq(me.clone())),
                Listing::SharedWithMe => q.filter(grants::user_id.is_not_null()),
            };
            if let Some(text) = query.q.as_deref().filter(|t| !t.is_empty()) {
                q = q.filter(chat_sessions::title.like(like_pattern(text)).escape('\\'));
            }
            if let Some(Cursor { updated_at, id }) = &query.cursor {
                q = q.filter(
                    chat_sessions::updated_at
                        .lt(*updated_at)
                        .or(chat_sessions::updated_at
                            .eq(*updated_at)
                            .and(chat_sessions::id.lt(id.clone()))),
                );
            }
            q.order((chat_sessions::updated_at.desc(), chat_sessions::id.desc()))
                .limit(limit + 1)
                .load::<Joined>(conn)
        })?;
        let mut data: Vec<Visible<ChatSession>> = rows.into_iter().map(visible).collect();
        let next_cursor = if data.len() as i64 > limit {
            data.truncate(limit as usize);
            data.last().map(|v| Cursor {
                updated_at: v.item.updated_at.0,
                id: v.item.id.as_str().to_owned(),
            })
        } else {
            None
        };
        Ok(CursorPage { data, next_cursor })
    }

    fn update(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        patch: &ChatSessionPatch,
        now: Timestamp,
    ) -> Result<ChatSession, RepoError> {
        self.write(|conn| {
            check_visible(conn, reader, id)?;
            let target = chat_sessions::table.find(id.as_str());
            if let Some(title) = &patch.title {
                diesel::update(target)
                    .set(chat_sessions::title.eq(title))
                    .execute(conn)?;
            }
            if let Some(model) = &patch.model {
                diesel::update(target)
                    .set(chat_sessions::model.eq(model))
                    .execute(conn)?;
            }
            if let Some(preset) = &patch.preset_id {
                diesel::update(target)
                    .set(chat_sessions::preset_id.eq(preset))
                    .execute(conn)?;
            }
            diesel::update(target)
                .set(chat_sessions::updated_at.eq(now.0))
                .execute(conn)?;
            Ok(load(conn, reader, id)?.item)
        })
    }

    fn delete(&self, reader: &Reader, id: &ChatSessionId) -> Result<(), RepoError> {
        self.write(|conn| {
            check_visible(conn, reader, id)?;
            // Messages go by cascade, shares by the table's trigger.
            diesel::delete(chat_sessions::table.find(id.as_str())).execute(conn)?;
            Ok(())
        })
    }

    fn append(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        messages: &[NewChatMessage],
        now: Timestamp,
    ) -> Result<Vec<ChatMessage>, RepoError> {
        self.write(|conn| {
            check_visible(conn, reader, id)?;
            let mut stored = Vec::with_capacity(messages.len());
            for m in messages {
                let row = diesel::insert_into(chat_messages::table)
                    .values((
                        chat_messages::session_id.eq(id.as_str()),
                        chat_messages::role.eq(m.role.as_str()),
                        chat_messages::content.eq(&m.content),
                        chat_messages::created_at.eq(now.0),
                        chat_messages::model.eq(&m.model),
                        chat_messages::prompt_tokens.eq(m.usage.map(|u| u.prompt_tokens)),
                        chat_messages::completion_tokens.eq(m.usage.map(|u| u.completion_tokens)),
                        chat_messages::citations.eq(&m.citations),
                        chat_messages::interrupted.eq(m.interrupted),
                    ))
                    .returning(MessageRow::as_returning())
                    .get_result(conn)?;
                stored.push(row.into_message());
            }
            let added = i64::try_from(messages.len()).unwrap_or(i64::MAX);
            diesel::update(chat_sessions::table.find(id.as_str()))
                .set((
                    chat_sessions::message_count.eq(chat_sessions::message_count + added),
                    chat_sessions::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(stored)
        })
    }

    fn messages(&self, reader: &Reader, id: &ChatSessionId) -> Result<Vec<ChatMessage>, RepoError> {
        let rows = self.read(|conn| {
            load(conn, reader, id)?;
            chat_messages::table
                .filter(chat_messages::session_id.eq(id.as_str()))
                .order(chat_messages::id.asc())
                .select(MessageRow::as_select())
                .load(conn)
        })?;
        Ok(rows.into_iter().map(MessageRow::into_message).collect())
    }

    fn recent_messages(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        max_bytes: usize,
    ) -> Result<(Vec<ChatMessage>, usize), RepoError> {
        // One read transaction: the sizes and the rows agree.
        let (rows, total) = self.read(|conn| {
            conn.transaction(|conn| {
                let total =
                    usize::try_from(load(conn, reader, id)?.item.message_count).unwrap_or(0);
                // Sizes newest first (octet_length reads a row's header, not
                // its text), at most MAX_HISTORY_ROWS of them, then only the
                // rows that fit.
                let sizes: Vec<(i64, i64)> = chat_messages::table
                    .filter(chat_messages::session_id.eq(id.as_str()))
                    .order(chat_messages::id.desc())
                    .limit(MAX_HISTORY_ROWS)
                    .select((
                        chat_messages::id,
                        diesel::dsl::sql::<diesel::sql_types::BigInt>("octet_length(content)"),
                    ))
                    .load(conn)?;
                let mut used = 0usize;
                let mut first = None;
                for (message, size) in &sizes {
                    used = used.saturating_add(usize::try_from(*size).unwrap_or(usize::MAX));
                    if used > max_bytes {
                        break;
                    }
                    first = Some(*message);
                }
                let Some(first) = first else {
                    return Ok((Vec::new(), total));
                };
                let rows = chat_messages::table
                    .filter(chat_messages::session_id.eq(id.as_str()))
                    .filter(chat_messages::id.ge(first))
                    .order(chat_messages::id.asc())
                    .select(MessageRow::as_select())
                    .load(conn)?;
                Ok((rows, total))
            })
        })?;
        let omitted = total.saturating_sub(rows.len());
        Ok((
            rows.into_iter().map(MessageRow::into_message).collect(),
            omitted,
        ))
    }
}

/// The most messages one history read considers, newest first.
const MAX_HISTORY_ROWS: i64 = 10_000;

/// `%text%` for LIKE, with `%`, `_` and `\` taken literally.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
