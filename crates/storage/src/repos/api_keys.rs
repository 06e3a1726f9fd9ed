//! `ApiKeyRepository` on SQLite. Listing and revocation filter by scope and
//! owner; only the authentication lookup by prefix is unscoped.

use diesel::prelude::*;
use offgrid_domain::repo::ApiKeyRepository;
use offgrid_domain::user::{ApiKey, ApiKeyRecord, NewApiKey, User};
use offgrid_domain::{ApiKeyId, RepoError, Scope, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::repos::UserRow;
use crate::schema::{api_keys, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct KeyRow {
    id: String,
    user_id: String,
    name: String,
    prefix: String,
    secret_hash: Vec<u8>,
    epoch: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    created_at: i64,
    revoked_at: Option<i64>,
    can_create_keys: bool,
}

impl KeyRow {
    fn into_record(self) -> ApiKeyRecord {
        ApiKeyRecord {
            key: ApiKey {
                id: ApiKeyId::from_string(self.id),
                user_id: UserId::from_string(self.user_id),
                name: self.name,
                prefix: self.prefix,
                expires_at: self.expires_at.map(Timestamp),
                last_used_at: self.last_used_at.map(Timestamp),
                created_at: Timestamp(self.created_at),
                revoked_at: self.revoked_at.map(Timestamp),
                can_create_keys: self.can_create_keys,
                epoch: self.epoch,
            },
            secret_hash: self.secret_hash,
        }
    }
}

fn load_key(conn: &mut SqliteConnection, owner: &UserId, id: &ApiKeyId) -> Result<KeyRow, TxError> {
    Ok(api_keys::table
        .filter(api_keys::id.eq(id.as_str()))
        .filter(api_keys::user_id.eq(owner.as_str()))
        .select(KeyRow::as_select())
        .get_result(conn)?)
}

impl ApiKeyRepository for Database {
    fn create(&self, scope: &Scope, key: NewApiKey) -> Result<ApiKey, RepoError> {
        if !scope.allows(&key.user_id) {
            return Err(RepoError::NotFound);
        }
        self.write(|conn| {
            // Inside the write transaction, so no epoch bump can come
            // between this check and the insert.
            let epoch: i64 = users::table
                .find(key.user_id.as_str())
                .select(users::token_epoch)
                .get_result(conn)?;
            if epoch != key.epoch {
                return Err(RepoError::StaleEpoch.into());
            }
            if let Some((issuer, verified)) = &key.issuer {
                let epoch: Option<i64> = users::table
                    .find(issuer.as_str())
                    .select(users::token_epoch)
                    .get_result(conn)
                    .optional()?;
                if epoch != Some(*verified) {
                    return Err(RepoError::StaleEpoch.into());
                }
            }
            let id = ApiKeyId::generate();
            diesel::insert_into(api_keys::table)
                .values((
                    api_keys::id.eq(id.as_str()),
                    api_keys::user_id.eq(key.user_id.as_str()),
                    api_keys::name.eq(&key.name),
                    api_keys::prefix.eq(&key.prefix),
                    api_keys::secret_hash.eq(&key.secret_hash),
                    api_keys::epoch.eq(key.epoch),
                    api_keys::expires_at.eq(key.expires_at.map(|t| t.0)),
                    api_keys::created_at.eq(key.created_at.0),
                    api_keys::can_create_keys.eq(key.can_create_keys),
                ))
                .execute(conn)?;
            Ok(load_key(conn, &key.user_id, &id)?.into_record().key)
        })
    }

    fn get(&self, scope: &Scope, owner: &UserId, id: &ApiKeyId) -> Result<ApiKey, RepoError> {
        if !scope.allows(owner) {
            return Err(RepoError::NotFound);
        }
        let row = self.read(|conn| {
            api_keys::table
                .filter(api_keys::id.eq(id.as_str()))
                .filter(api_keys::user_id.eq(owner.as_str()))
                .select(KeyRow::as_select())
                .get_result(conn)
        })?;
        Ok(row.into_record().key)
    }

    fn list(&self, scope: &Scope, owner: &UserId) -> Result<Vec<ApiKey>, RepoError> {
        if !scope.allows(owner) {
            return Err(RepoError::NotFound);
        }
        let rows = self.read(|conn| {
            api_keys::table
                .filter(api_keys::user_id.eq(owner.as_str()))
                // rowid breaks ties within one second: newest first, always.
                .order((
                    api_keys::created_at.desc(),
                    diesel::dsl::sql::<diesel::sql_types::BigInt>("api_keys.rowid").desc(),
                ))
                .select(KeyRow::as_select())
                .load(conn)
        })?;
        Ok(rows.into_iter().map(|r| r.into_record().key).collect())
    }

    fn revoke(
        &self,
        scope: &Scope,
        owner: &UserId,
        id: &ApiKeyId,
        now: Timestamp,
    ) -> Result<ApiKey, RepoError> {
        if !scope.allows(owner) {
            return Err(RepoError::NotFound);
        }
        self.write(|conn| {
            let row = load_key(conn, owner, id)?;
            if row.revoked_at.is_none() {
                diesel::update(api_keys::table.find(&row.id))
                    .set(api_keys::revoked_at.eq(Some(now.0)))
                    .execute(conn)?;
            }
            Ok(load_key(conn, owner, id)?.into_record().key)
        })
    }

    fn find_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKeyRecord, User)>, RepoError> {
        let found = self.read(|conn| {
            api_keys::table
                .inner_join(users::table)
                .filter(api_keys::prefix.eq(prefix))
                .select((KeyRow::as_select(), UserRow::as_select()))
                .get_result::<(KeyRow, UserRow)>(conn)
                .optional()
        })?;
        found
            .map(|(key, user)| Ok((key.into_record(), user.into_user()?)))
            .transpose()
    }

    fn touch(&self, id: &ApiKeyId, now: Timestamp) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::update(api_keys::table.find(id.as_str()))
                .set(api_keys::last_used_at.eq(Some(now.0)))
                .execute(conn)?;
            Ok(())
        })
    }
}
