//! `QuotaRepository` on SQLite. A request is admitted inside an immediate
//! (write) transaction, so two admissions of one subject never both see
//! the last free place: the count is exact under any concurrency, across
//! processes too.

use diesel::prelude::*;
use offgrid_domain::quota::{QuotaCounters, QuotaOverrides, RequestWindow};
use offgrid_domain::repo::QuotaRepository;
use offgrid_domain::{RepoError, Timestamp, UserId};

use crate::db::{Database, TxError};
use crate::schema::{quota_overrides, quota_requests, quota_tokens, users};

/// `None` (default) → NULL, `Some(None)` (unlimited) → -1.
fn to_column(v: Option<Option<u64>>) -> Option<i64> {
    v.map(|limit| limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)))
}

fn from_column(v: Option<i64>) -> Option<Option<u64>> {
    v.map(|n| u64::try_from(n).ok())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl QuotaRepository for Database {
    fn overrides(&self, user: &UserId) -> Result<QuotaOverrides, RepoError> {
        let row = self.read(|conn| {
            quota_overrides::table
                .find(user.as_str())
                .select((
                    quota_overrides::requests_per_minute,
                    quota_overrides::tokens_per_day,
                    quota_overrides::max_concurrent,
                ))
                .first::<(Option<i64>, Option<i64>, Option<i64>)>(conn)
                .optional()
        })?;
        Ok(match row {
            None => QuotaOverrides::default(),
            Some((rpm, tpd, conc)) => QuotaOverrides {
                requests_per_minute: from_column(rpm),
                tokens_per_day: from_column(tpd),
                max_concurrent: from_column(conc),
            },
        })
    }

    fn set_overrides(
        &self,
        user: &UserId,
        overrides: &QuotaOverrides,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.write(|conn| {
            let exists = users::table
                .find(user.as_str())
                .select(users::id)
                .first::<String>(conn)
                .optional()?;
            if exists.is_none() {
                return Err(TxError::Repo(RepoError::NotFound));
            }
            diesel::delete(quota_overrides::table.find(user.as_str())).execute(conn)?;
            if !overrides.is_empty() {
                diesel::insert_into(quota_overrides::table)
                    .values((
                        quota_overrides::user_id.eq(user.as_str()),
                        quota_overrides::requests_per_minute
                            .eq(to_column(overrides.requests_per_minute)),
                        quota_overrides::tokens_per_day.eq(to_column(overrides.tokens_per_day)),
                        quota_overrides::max_concurrent.eq(to_column(overrides.max_concurrent)),
                        quota_overrides::updated_at.eq(now.0),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn take_request(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
        limit: u64,
    ) -> Result<RequestWindow, RepoError> {
        let since = now_ms.saturating_sub(window_ms);
        self.write(|conn| {
            // Everyone's expired rows: the table holds at most a minute. Rows
            // from a clock since stepped back by more than a window are
            // forgotten too, so nobody stays locked out by them.
            diesel::delete(
                quota_requests::table.filter(
                    quota_requests::at_ms
                        .le(since)
                        .or(quota_requests::at_ms.gt(now_ms.saturating_add(window_ms))),
                ),
            )
            .execute(conn)?;
            let (used, oldest) = quota_requests::table
                .filter(quota_requests::subject.eq(subject))
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::min(quota_requests::at_ms),
                ))
                .first::<(i64, Option<i64>)>(conn)?;
            let used = count(used);
            if used >= limit {
                return Ok(RequestWindow {
                    admitted: false,
                    used,
                    oldest_ms: oldest,
                });
            }
            diesel::insert_into(quota_requests::table)
                .values((
                    quota_requests::subject.eq(subject),
                    quota_requests::at_ms.eq(now_ms),
                ))
                .execute(conn)?;
            Ok(RequestWindow {
                admitted: true,
                used: used + 1,
                oldest_ms: Some(oldest.unwrap_or(now_ms)),
            })
        })
    }

    fn add_tokens(&self, subject: &str, day: i64, tokens: u64) -> Result<(), RepoError> {
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        self.write(|conn| {
            diesel::delete(quota_tokens::table.filter(quota_tokens::day.lt(day - 1)))
                .execute(conn)?;
            diesel::insert_into(quota_tokens::table)
                .values((
                    quota_tokens::subject.eq(subject),
                    quota_tokens::day.eq(day),
                    quota_tokens::tokens.eq(tokens),
                ))
                .on_conflict((quota_tokens::subject, quota_tokens::day))
                .do_update()
                .set(
                    quota_tokens::tokens.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "min(tokens + excluded.tokens, 9223372036854775807)",
                    )),
                )
                .execute(conn)?;
            Ok(())
        })
    }

    fn counters(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
        day: i64,
    ) -> Result<QuotaCounters, RepoError> {
        let since = now_ms.saturating_sub(window_ms);
        self.read(|conn| {
            let (requests, oldest) = quota_requests::table
                .filter(quota_requests::subject.eq(subject))
                .filter(quota_requests::at_ms.gt(since))
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::min(quota_requests::at_ms),
                ))
                .first::<(i64, Option<i64>)>(conn)?;
            let tokens = quota_tokens::table
                .find((subject, day))
                .select(quota_tokens::tokens)
                .first::<i64>(conn)
                .optional()?;
            Ok(QuotaCounters {
                requests: count(requests),
                oldest_request_ms: oldest,
                tokens_today: count(tokens.unwrap_or(0)),
            })
        })
    }

    fn reset(&self, subject: &str) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::delete(quota_requests::table.filter(quota_requests::subject.eq(subject)))
                .execute(conn)?;
            diesel::delete(quota_tokens::table.filter(quota_tokens::subject.eq(subject)))
                .execute(conn)?;
            Ok(())
        })
    }
}
