//! `ThrottleRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::repo::ThrottleRepository;
use offgrid_domain::user::{Admission, AttemptKeys, ThrottleState, ThrottledKey};
use offgrid_domain::{RepoError, Timestamp};

use crate::db::Database;
use crate::schema::login_throttle;

/// Idle counters older than this are forgotten.
const STALE_AFTER_SECS: i64 = 86_400;

fn state(row: Option<(i32, Option<i64>)>) -> ThrottleState {
    let (failures, locked_until) = row.unwrap_or((0, None));
    ThrottleState {
        failures: u32::try_from(failures).unwrap_or(0),
        locked_until: locked_until.map(Timestamp),
    }
}

/// A counter as stored: failures, lock end, last change.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    failures: u32,
    locked_until: Option<i64>,
    updated_at: i64,
}

impl Counter {
    fn locked_at(&self, now: Timestamp) -> Option<i64> {
        self.locked_until.filter(|until| *until > now.0)
    }
}

fn load(conn: &mut SqliteConnection, key: &str) -> QueryResult<Counter> {
    let row: Option<(i32, Option<i64>, i64)> = login_throttle::table
        .find(key)
        .select((
            login_throttle::failures,
            login_throttle::locked_until,
            login_throttle::updated_at,
        ))
        .get_result(conn)
        .optional()?;
    Ok(
        row.map_or_else(Counter::default, |(failures, locked_until, updated_at)| {
            Counter {
                failures: u32::try_from(failures).unwrap_or(0),
                locked_until,
                updated_at,
            }
        }),
    )
}

fn store(conn: &mut SqliteConnection, key: &str, counter: Counter) -> QueryResult<()> {
    let failures = i32::try_from(counter.failures).unwrap_or(i32::MAX);
    diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::key.eq(key),
            login_throttle::failures.eq(failures),
            login_throttle::locked_until.eq(counter.locked_until),
            login_throttle::updated_at.eq(counter.updated_at),
        ))
        .on_conflict(login_throttle::key)
        .do_update()
        .set((
            login_throttle::failures.eq(failures),
            login_throttle::locked_until.eq(counter.locked_until),
            login_throttle::updated_at.eq(counter.updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets counters idle for a day and no longer locked, so failures
/// against made-up usernames cannot grow the table without bound.
fn prune_stale(conn: &mut SqliteConnection, now: Timestamp) -> QueryResult<()> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::updated_at.lt(now.0 - STALE_AFTER_SECS))
            .filter(
                login_throttle::locked_until
                    .is_null()
                    .or(login_throttle::locked_until.lt(now.0)),
            ),
    )
    .execute(conn)?;
    Ok(())
}

/// One more failure on `counter`, with the lock the back-off gives (never
/// shortening a lock already in force).
fn fail(counter: Counter, now: Timestamp, backoff: i64) -> Counter {
    let failures = counter.failures.saturating_add(1);
    let new_lock = (backoff > 0).then(|| now.plus_secs(backoff).0);
    let locked_until = match (counter.locked_at(now), new_lock) {
        (Some(old), Some(new)) => Some(old.max(new)),
        (old, new) => new.or(old),
    };
    Counter {
        failures,
        locked_until,
        updated_at: now.0,
    }
}

impl ThrottleRepository for Database {
    fn begin_attempt(
        &self,
        keys: &AttemptKeys<'_>,
        now: Timestamp,
        backoff: &dyn Fn(u32, u32) -> i64,
    ) -> Result<Admission, RepoError> {
        self.write(|conn| {
            prune_stale(conn, now)?;
            let (account_key, account_threshold) = keys.account;
            let account = load(conn, account_key)?;
            let address = match keys.address {
                Some((key, threshold)) => Some((key, threshold, load(conn, key)?)),
                None => None,
            };
            if let Some((_, _, counter)) = &address
                && let Some(until) = counter.locked_at(now)
            {
                return Ok(Admission::Refused {
                    by: ThrottledKey::Address,
                    until: Timestamp(until),
                    since: Timestamp(counter.updated_at),
                });
            }
            let account_locked = account.locked_at(now);
            if let (Some(until), false) = (account_locked, keys.known_device) {
                return Ok(Admission::Refused {
                    by: ThrottledKey::Account,
                    until: Timestamp(until),
                    since: Timestamp(account.updated_at),
                });
            }
            let counted = fail(
                account,
                now,
                backoff(account.failures.saturating_add(1), account_threshold),
            );
            store(conn, account_key, counted)?;
            if let Some((key, threshold, counter)) = address {
                let counted = fail(
                    counter,
                    now,
                    backoff(counter.failures.saturating_add(1), threshold),
                );
                store(conn, key, counted)?;
            }
            Ok(Admission::Admitted {
                account_locked_until: account_locked.map(Timestamp),
            })
        })
    }

    fn attempt_succeeded(&self, keys: &AttemptKeys<'_>) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::delete(login_throttle::table.find(keys.account.0)).execute(conn)?;
            if let Some((key, _)) = keys.address {
                diesel::update(
                    login_throttle::table
                        .find(key)
                        .filter(login_throttle::failures.gt(0)),
                )
                .set(login_throttle::failures.eq(login_throttle::failures - 1))
                .execute(conn)?;
                diesel::delete(
                    login_throttle::table
                        .find(key)
                        .filter(login_throttle::failures.le(0))
                        .filter(login_throttle::locked_until.is_null()),
                )
                .execute(conn)?;
            }
            Ok(())
        })
    }

    fn get(&self, key: &str) -> Result<ThrottleState, RepoError> {
        let row = self.read(|conn| {
            login_throttle::table
                .find(key)
                .select((login_throttle::failures, login_throttle::locked_until))
                .get_result(conn)
                .optional()
        })?;
        Ok(state(row))
    }

    fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        backoff: &dyn Fn(u32) -> i64,
    ) -> Result<ThrottleState, RepoError> {
        self.write(|conn| {
            let current = state(
                login_throttle::table
                    .find(key)
                    .select((login_throttle::failures, login_throttle::locked_until))
                    .get_result(conn)
                    .optional()?,
            );
            prune_stale(conn, now)?;
            let failures = current.failures.saturating_add(1);
            let delay = backoff(failures);
            let locked_until = (delay > 0).then(|| now.plus_secs(delay).0);
            let stored = i32::try_from(failures).unwrap_or(i32::MAX);
            diesel::insert_into(login_throttle::table)
                .values((
                    login_throttle::key.eq(key),
                    login_throttle::failures.eq(stored),
                    login_throttle::locked_until.eq(locked_until),
                    login_throttle::updated_at.eq(now.0),
                ))
                .on_conflict(login_throttle::key)
                .do_update()
                .set((
                    login_throttle::failures.eq(stored),
                    login_throttle::locked_until.eq(locked_until),
                    login_throttle::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            Ok(ThrottleState {
                failures,
                locked_until: locked_until.map(Timestamp),
            })
        })
    }

    fn reset(&self, key: &str) -> Result<(), RepoError> {
        self.write(|conn| {
            diesel::delete(login_throttle::table.find(key)).execute(conn)?;
            Ok(())
        })
    }
}
