//! `UsageRepository` on SQLite.

use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use offgrid_domain::repo::UsageRepository;
use offgrid_domain::usage::{NewUsage, UsageTotal};
use offgrid_domain::{RepoError, Scope, Timestamp, UserId};

use crate::db::Database;
use crate::schema::usage_records as u;

impl UsageRepository for Database {
    fn record(&self, r: NewUsage) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::insert_into(u::table)
                .values((
                    u::at.eq(r.at.0),
                    u::user_id.eq(r.user_id.as_ref().map(|id| id.as_str())),
                    u::api_key_id.eq(r.api_key_id.as_ref().map(|id| id.as_str())),
                    u::model.eq(&r.model),
                    u::endpoint.eq(&r.endpoint),
                    u::prompt_tokens.eq(r.prompt_tokens),
                    u::completion_tokens.eq(r.completion_tokens),
                    u::duration_ms.eq(r.duration_ms),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn totals(&self, scope: &Scope, since: Timestamp) -> Result<Vec<UsageTotal>, RepoError> {
        type Row = (Option<String>, String, i64, Option<i64>, Option<i64>);
        // group_by does not combine with boxed queries, so the two scopes
        // are two statements sharing one shape.
        macro_rules! totals {
            ($query:expr, $conn:expr) => {
                $query
                    .group_by((u::user_id, u::model))
                    .select((
                        u::user_id,
                        u::model,
                        count_star(),
                        sql::<Nullable<BigInt>>("SUM(prompt_tokens)"),
                        sql::<Nullable<BigInt>>("SUM(completion_tokens)"),
                    ))
                    .order((u::user_id, u::model))
                    .load::<Row>($conn)
            };
        }
        let rows: Vec<Row> = self.read(|conn| {
            let recent = u::table.filter(u::at.ge(since.0));
            match scope.owner() {
                Some(owner) => totals!(recent.filter(u::user_id.eq(owner.as_str())), conn),
                None => totals!(recent, conn),
            }
        })?;
        Ok(rows
            .into_iter()
            .map(|(user, model, requests, prompt, completion)| UsageTotal {
                user_id: user.map(UserId::from_string),
                model,
                requests,
                prompt_tokens: prompt.unwrap_or(0),
                completion_tokens: completion.unwrap_or(0),
            })
            .collect())
    }
}
