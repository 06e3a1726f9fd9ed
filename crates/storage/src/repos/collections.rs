//! `CollectionRepository` on SQLite. Like chat sessions, every query joins
//! the reader's share and keeps only collections the reader owns, was
//! shared, or may see as an administrator; documents and chunks are only
//! reached through a collection that passed that filter.

use diesel::prelude::*;
use offgrid_domain::rag::{
    ChunkHit, Collection, CollectionPatch, CollectionQuery, Document, DocumentStatus, Indexed,
    NewCollection, NewDocument, StatusCounts, StoredEmbedding,
};
use offgrid_domain::repo::CollectionRepository;
use offgrid_domain::workspace::{
    Cursor, CursorPage, Listing, OwnerRef, Reader, ResourceKind, Visible,
};
use offgrid_domain::{CollectionId, DocumentId, RepoError, Timestamp, UserId};

use super::chats::like_pattern;
use crate::db::Database;
use crate::schema::{grants, rag_chunks, rag_collections, rag_documents, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rag_collections)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct CollectionRow {
    id: String,
    owner_id: String,
    name: String,
    description: String,
    document_count: i64,
    chunk_count: i64,
    created_at: i64,
    updated_at: i64,
}

/// A collection row with its owner's name and the reader's share level.
type Joined = (CollectionRow, String, Option<String>);

fn visible((row, username, level): Joined) -> Visible<Collection> {
    Visible {
        item: Collection {
            id: CollectionId::from_string(row.id),
            name: row.name,
            description: row.description,
            owner: OwnerRef {
                id: UserId::from_string(row.owner_id),
                username,
            },
            document_count: row.document_count,
            chunk_count: row.chunk_count,
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        },
        shared: level.and_then(|l| l.parse().ok()),
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rag_documents)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct DocumentRow {
    id: String,
    collection_id: String,
    name: String,
    content_type: String,
    bytes: i64,
    status: String,
    error: Option<String>,
    chunks: i64,
    created_at: i64,
    updated_at: i64,
}

impl DocumentRow {
    fn into_document(self) -> Document {
        Document {
            id: DocumentId::from_string(self.id),
            collection_id: CollectionId::from_string(self.collection_id),
            name: self.name,
            content_type: self.content_type,
            bytes: self.bytes,
            // The column's CHECK allows only the three names.
            status: self.status.parse().unwrap_or(DocumentStatus::Failed),
            error: self.error,
            chunks: self.chunks,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }
}

/// Collections joined with their owner and the reader's share, filtered to
/// what the reader may see.
macro_rules! joined {
    ($reader:expr) => {{
        let me = $reader.user_id().as_str().to_owned();
        let query = rag_collections::table
            .inner_join(users::table)
            .left_join(
                grants::table.on(grants::resource_type
                    .eq(ResourceKind::Collection.as_str())
                    .and(grants::resource_id.eq(rag_collections::id))
                    .and(grants::user_id.eq(me.clone()))),
            )
            .select((
                CollectionRow::as_select(),
                users::username,
                grants::level.nullable(),
            ))
            .into_boxed();
        if $reader.sees_all() {
            query
        } else {
            query.filter(
                rag_collections::owner_id
                    .eq(me)
                    .or(grants::user_id.is_not_null()),
            )
        }
    }};
}

fn load(
    conn: &mut SqliteConnection,
    reader: &Reader,
    id: &CollectionId,
) -> Result<Visible<Collection>, diesel::result::Error> {
    joined!(reader)
        .filter(rag_collections::id.eq(id.as_str().to_owned()))
        .get_result::<Joined>(conn)
        .map(visible)
}

fn load_document(
    conn: &mut SqliteConnection,
    id: &CollectionId,
    document: &DocumentId,
) -> Result<Document, diesel::result::Error> {
    rag_documents::table
        .filter(rag_documents::id.eq(document.as_str()))
        .filter(rag_documents::collection_id.eq(id.as_str()))
        .select(DocumentRow::as_select())
        .get_result(conn)
        .map(DocumentRow::into_document)
}

/// Turns one page's rows into a page, the cursor from the last row kept.
fn page<T>(mut data: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> CursorPage<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if data.len() > limit {
        data.truncate(limit);
        data.last().map(key)
    } else {
        None
    };
    CursorPage { data, next_cursor }
}

impl CollectionRepository for Database {
    fn create(&self, new: NewCollection, now: Timestamp) -> Result<Collection, RepoError> {
        let id = CollectionId::generate();
        let reader = Reader::user(new.owner.clone());
        self.write(|conn| {
            diesel::insert_into(rag_collections::table)
                .values((
                    rag_collections::id.eq(id.as_str()),
                    rag_collections::owner_id.eq(new.owner.as_str()),
                    rag_collections::name.eq(&new.name),
                    rag_collections::description.eq(&new.description),
                    rag_collections::created_at.eq(now.0),
                    rag_collections::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load(conn, &reader, &id)?.item)
        })
    }

    fn get(&self, reader: &Reader, id: &CollectionId) -> Result<Visible<Collection>, RepoError> {
        self.read(|conn| load(conn, reader, id))
    }

    fn list(
        &self,
        reader: &Reader,
        query: &CollectionQuery,
    ) -> Result<CursorPage<Visible<Collection>>, RepoError> {
        let me = reader.user_id().as_str().to_owned();
        let limit = query.limit.clamp(1, 1000);
        let rows = self.read(|conn| {
            let mut q = joined!(reader);
            q = match query.listing {
                Listing::All if reader.sees_all() => q,
                Listing::Own | Listing::All => q.filter(rag_collections::owner_id.eq(me.clone())),
                Listing::SharedWithMe => q.filter(grants::user_id.is_not_null()),
            };
            if let Some(text) = query.q.as_deref().filter(|t| !t.is_empty()) {
                q = q.filter(rag_collections::name.like(like_pattern(text)).escape('\\'));
            }
            if let Some(Cursor { updated_at, id }) = &query.cursor {
                q = q.filter(
                    rag_collections::updated_at
                        .lt(*updated_at)
                        .or(rag_collections::updated_at
                            .eq(*updated_at)
                            .and(rag_collections::id.lt(id.clone()))),
                );
            }
            q.order((
                rag_collections::updated_at.desc(),
                rag_collections::id.desc(),
            ))
            .limit(limit + 1)
            .load::<Joined>(conn)
        })?;
        let data = rows.into_iter().map(visible).collect();
        Ok(page(data, limit, |v: &Visible<Collection>| Cursor {
            updated_at: v.item.updated_at.0,
            id: v.item.id.as_str().to_owned(),
        }))
    }

    fn update(
        &self,
        reader: &Reader,
        id: &CollectionId,
        patch: &CollectionPatch,
        now: Timestamp,
    ) -> Result<Collection, RepoError> {
        self.write(|conn| {
            load(conn, reader, id)?;
            let target = rag_collections::table.find(id.as_str());
            if let Some(name) = &patch.name {
                diesel::update(target)
                    .set(rag_collections::name.eq(name))
                    .execute(conn)?;
            }
            if let Some(description) = &patch.description {
                diesel::update(target)
                    .set(rag_collections::description.eq(description))
                    .execute(conn)?;
            }
            diesel::update(target)
                .set(rag_collections::updated_at.eq(now.0))
                .execute(conn)?;
            Ok(load(conn, reader, id)?.item)
        })
    }

    fn delete(&self, reader: &Reader, id: &CollectionId) -> Result<(), RepoError> {
        self.write(|conn| {
            load(conn, reader, id)?;
            // Documents and chunks go by cascade, shares by the trigger.
            diesel::delete(rag_collections::table.find(id.as_str())).execute(conn)?;
            Ok(())
        })
    }

    fn add_document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        new: &NewDocument,
        now: Timestamp,
    ) -> Result<Document, RepoError> {
        let document = DocumentId::generate();
        self.write(|conn| {
            load(conn, reader, id)?;
            diesel::insert_into(rag_documents::table)
                .values((
                    rag_documents::id.eq(document.as_str()),
                    rag_documents::collection_id.eq(id.as_str()),
                    rag_documents::name.eq(&new.name),
                    rag_documents::content_type.eq(&new.content_type),
                    rag_documents::bytes.eq(new.bytes),
                    rag_documents::status.eq(DocumentStatus::Indexing.as_str()),
                    rag_documents::created_at.eq(now.0),
                    rag_documents::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            diesel::update(rag_collections::table.find(id.as_str()))
                .set((
                    rag_collections::document_count.eq(rag_collections::document_count + 1),
                    rag_collections::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(load_document(conn, id, &document)?)
        })
    }

    fn documents(
        &self,
        reader: &Reader,
        id: &CollectionId,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Document>, RepoError> {
        let limit = limit.clamp(1, 1000);
        let rows = self.read(|conn| {
            conn.transaction(|conn| {
                load(conn, reader, id)?;
                let mut q = rag_documents::table
                    .filter(rag_documents::collection_id.eq(id.as_str().to_owned()))
                    .select(DocumentRow::as_select())
                    .into_boxed();
                if let Some(Cursor { updated_at, id }) = cursor {
                    q = q.filter(
                        rag_documents::created_at
                            .lt(*updated_at)
                            .or(rag_documents::created_at
                                .eq(*updated_at)
                                .and(rag_documents::id.lt(id.clone()))),
                    );
                }
                q.order((rag_documents::created_at.desc(), rag_documents::id.desc()))
                    .limit(limit + 1)
                    .load(conn)
            })
        })?;
        let data = rows.into_iter().map(DocumentRow::into_document).collect();
        Ok(page(data, limit, |d: &Document| Cursor {
            updated_at: d.created_at.0,
            id: d.id.as_str().to_owned(),
        }))
    }

    fn document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<Document, RepoError> {
        self.read(|conn| {
            conn.transaction(|conn| {
                load(conn, reader, id)?;
                load_document(conn, id, document)
            })
        })
    }

    fn delete_document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<(), RepoError> {
        self.write(|conn| {
            load(conn, reader, id)?;
            let doc = load_document(conn, id, document)?;
            // Chunks go by cascade.
            diesel::delete(rag_documents::table.find(document.as_str())).execute(conn)?;
            diesel::update(rag_collections::table.find(id.as_str()))
                .set((
                    rag_collections::document_count.eq(rag_collections::document_count - 1),
                    rag_collections::chunk_count.eq(rag_collections::chunk_count - doc.chunks),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn finish_document(
        &self,
        document: &DocumentId,
        outcome: &Indexed,
        now: Timestamp,
    ) -> Result<Option<Document>, RepoError> {
        self.write(|conn| {
            let row: Option<DocumentRow> = rag_documents::table
                .find(document.as_str())
                .filter(rag_documents::status.eq(DocumentStatus::Indexing.as_str()))
                .select(DocumentRow::as_select())
                .get_result(conn)
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let target = rag_documents::table.find(document.as_str());
            match outcome {
                Indexed::Failed(message) => {
                    diesel::update(target)
                        .set((
                            rag_documents::status.eq(DocumentStatus::Failed.as_str()),
                            rag_documents::error.eq(message),
                            rag_documents::updated_at.eq(now.0),
                        ))
                        .execute(conn)?;
                }
                Indexed::Ready {
                    content_type,
                    chunks,
                } => {
                    for chunk in chunks {
                        diesel::insert_into(rag_chunks::table)
                            .values((
                                rag_chunks::document_id.eq(&row.id),
                                rag_chunks::collection_id.eq(&row.collection_id),
                                rag_chunks::chunk_index.eq(chunk.index),
                                rag_chunks::text.eq(&chunk.text),
                                rag_chunks::embedding.eq(&chunk.embedding),
                            ))
                            .execute(conn)?;
                    }
                    let count = i64::try_from(chunks.len()).unwrap_or(i64::MAX);
                    diesel::update(target)
                        .set((
                            rag_documents::status.eq(DocumentStatus::Ready.as_str()),
                            rag_documents::content_type.eq(content_type),
                            rag_documents::chunks.eq(count),
                            rag_documents::updated_at.eq(now.0),
                        ))
                        .execute(conn)?;
                    diesel::update(rag_collections::table.find(&row.collection_id))
                        .set((
                            rag_collections::chunk_count.eq(rag_collections::chunk_count + count),
                            rag_collections::updated_at.eq(now.0),
                        ))
                        .execute(conn)?;
                }
            }
            let id = CollectionId::from_string(row.collection_id);
            Ok(Some(load_document(conn, &id, document)?))
        })
    }

    fn fail_unfinished(&self, message: &str, now: Timestamp) -> Result<u64, RepoError> {
        self.write(|conn| {
            let n = diesel::update(
                rag_documents::table
                    .filter(rag_documents::status.eq(DocumentStatus::Indexing.as_str())),
            )
            .set((
                rag_documents::status.eq(DocumentStatus::Failed.as_str()),
                rag_documents::error.eq(message),
                rag_documents::updated_at.eq(now.0),
            ))
            .execute(conn)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
    }

    fn embeddings(
        &self,
        reader: &Reader,
        id: &CollectionId,
    ) -> Result<Vec<StoredEmbedding>, RepoError> {
        let rows: Vec<(i64, Vec<u8>)> = self.read(|conn| {
            conn.transaction(|conn| {
                load(conn, reader, id)?;
                rag_chunks::table
                    .filter(rag_chunks::collection_id.eq(id.as_str()))
                    .order(rag_chunks::id.asc())
                    .select((rag_chunks::id, rag_chunks::embedding))
                    .load(conn)
            })
        })?;
        Ok(rows
            .into_iter()
            .map(|(chunk_id, embedding)| StoredEmbedding {
                chunk_id,
                embedding,
            })
            .collect())
    }

    fn chunks(&self, reader: &Reader, ids: &[i64]) -> Result<Vec<ChunkHit>, RepoError> {
        type Row = (i64, String, i64, String, String, String, String);
        let rows: Vec<Row> = self.read(|conn| {
            conn.transaction(|conn| {
                let rows: Vec<Row> = rag_chunks::table
                    .inner_join(rag_documents::table.inner_join(rag_collections::table))
                    .filter(rag_chunks::id.eq_any(ids))
                    .select((
                        rag_chunks::id,
                        rag_chunks::text,
                        rag_chunks::chunk_index,
                        rag_documents::id,
                        rag_documents::name,
                        rag_collections::id,
                        rag_collections::name,
                    ))
                    .load(conn)?;
                // Only collections the reader can still see, checked in
                // this transaction.
                let mut seen: Vec<(String, bool)> = Vec::new();
                let mut kept = Vec::with_capacity(rows.len());
                for row in rows {
                    let ok = match seen.iter().find(|(c, _)| *c == row.5) {
                        Some((_, ok)) => *ok,
                        None => {
                            let ok = match load(conn, reader, &CollectionId::from_string(&row.5)) {
                                Ok(_) => true,
                                Err(diesel::result::Error::NotFound) => false,
                                Err(e) => return Err(e),
                            };
                            seen.push((row.5.clone(), ok));
                            ok
                        }
                    };
                    if ok {
                        kept.push(row);
                    }
                }
                Ok(kept)
            })
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(chunk_id, text, chunk_index, doc, doc_name, coll, coll_name)| ChunkHit {
                    chunk_id,
                    text,
                    chunk_index,
                    document_id: DocumentId::from_string(doc),
                    document_name: doc_name,
                    collection_id: CollectionId::from_string(coll),
                    collection_name: coll_name,
                },
            )
            .collect())
    }

    fn status_counts(
        &self,
        reader: &Reader,
        ids: &[CollectionId],
    ) -> Result<StatusCounts, RepoError> {
        self.read(|conn| {
            conn.transaction(|conn| {
                let mut visible = Vec::with_capacity(ids.len());
                for id in ids {
                    match load(conn, reader, id) {
                        Ok(_) => visible.push(id.as_str().to_owned()),
                        Err(diesel::result::Error::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                let rows: Vec<(String, i64)> = rag_documents::table
                    .filter(rag_documents::collection_id.eq_any(&visible))
                    .group_by(rag_documents::status)
                    .select((rag_documents::status, diesel::dsl::count_star()))
                    .load(conn)?;
                let mut counts = StatusCounts::default();
                for (status, n) in rows {
                    match status.parse() {
                        Ok(DocumentStatus::Indexing) => counts.indexing = n,
                        Ok(DocumentStatus::Ready) => counts.ready = n,
                        _ => counts.failed += n,
                    }
                }
                Ok(counts)
            })
        })
    }
}
