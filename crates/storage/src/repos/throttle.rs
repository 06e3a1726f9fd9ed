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
fn prune_stale(conn: &mut SqliteConnection, now: Timestamp) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::updated_at.lt(now.0 - STALE_AFTER_SECS))
            .filter(
                login_throttle::locked_until
                    .is_null()
                    .or(login_throttle::locked_until.lt(now.0)),
            ),
    )
    .execute(conn)
}

/// Why an attempt is refused, if it is: its address is locked, or its
/// account is locked and the client is not a known device of it.
fn refusal(
    keys: &AttemptKeys<'_>,
    account: Counter,
    address: Option<Counter>,
    now: Timestamp,
) -> Option<Admission> {
    if let Some(counter) = address
        && let Some(until) = counter.locked_at(now)
    {
        return Some(Admission::Refused {
            by: ThrottledKey::Address,
            until: Timestamp(until),
            since: Timestamp(counter.updated_at),
        });
    }
    match (account.locked_at(now), keys.known_device) {
        (Some(until), false) => Some(Admission::Refused {
            by: ThrottledKey::Account,
            until: Timestamp(until),
            since: Timestamp(account.updated_at),
        }),
        _ => None,
    }
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
    fn check(&self, keys: &AttemptKeys<'_>, now: Timestamp) -> Result<Admission, RepoError> {
        self.read(|conn| {
            let account = load(conn, keys.account.0)?;
            let address = match keys.address {
                Some((key, _)) => Some(load(conn, key)?),
                None => None,
            };
            Ok(
                refusal(keys, account, address, now).unwrap_or(Admission::Admitted {
                    account_locked_until: account.locked_at(now).map(Timestamp),
                }),
            )
        })
    }

    fn prune_stale(&self, now: Timestamp) -> Result<u64, RepoError> {
        self.write(|conn| Ok(u64::try_from(prune_stale(conn, now)?).unwrap_or(0)))
    }

    fn begin_attempt(
        &self,
        keys: &AttemptKeys<'_>,
        now: Timestamp,
        backoff: &dyn Fn(u32, u32) -> i64,
    ) -> Result<Admission, RepoError> {
        self.write(|conn| {
            let (account_key, account_threshold) = keys.account;
            let account = load(conn, account_key)?;
            let address = match keys.address {
                Some((key, threshold)) => Some((key, threshold, load(conn, key)?)),
                None => None,
            };
            let address_counter = address.as_ref().map(|(_, _, c)| *c);
            if let Some(refused) = refusal(keys, account, address_counter, now) {
                return Ok(refused);
            }
            let account_locked = account.locked_at(now);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_idle_counters_uses_the_updated_at_index() {
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = diesel::sql_types::Text)]
            detail: String,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&dir.path().join("t.db")).expect("open");
        db.migrate().expect("migrate");
        let mut conn = db.conn().expect("conn");
        let plan: Vec<Plan> = diesel::sql_query(
            "EXPLAIN QUERY PLAN DELETE FROM login_throttle WHERE updated_at < 0 \
             AND (locked_until IS NULL OR locked_until < 0)",
        )
        .load(&mut *conn)
        .expect("plan");
        assert!(
            plan.iter()
                .any(|p| p.detail.contains("login_throttle_updated_at")),
            "a full scan: {:?}",
            plan.iter().map(|p| &p.detail).collect::<Vec<_>>()
        );
    }
}
