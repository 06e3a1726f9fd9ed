//! `ThrottleRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::repo::ThrottleRepository;
use offgrid_domain::user::ThrottleState;
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

impl ThrottleRepository for Database {
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
            // Forget counters idle for a day and no longer locked, so
            // failures against made-up usernames cannot grow the table
            // without bound.
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
