//! Quota counters and overrides on a real SQLite file: the request window
//! slides and stays exact when many threads admit at once.

use std::sync::Arc;

use offgrid_domain::quota::QuotaOverrides;
use offgrid_domain::repo::QuotaRepository;
use offgrid_domain::{RepoError, Timestamp, UserId};
use offgrid_storage::Database;

fn db() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
    db.migrate().expect("migrate");
    (db, dir)
}

#[test]
fn the_window_slides_and_counts_exactly_under_concurrency() {
    let (db, _dir) = db();
    let db = Arc::new(db);
    let now = 1_800_000_000_000;
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let db = db.clone();
                s.spawn(move || {
                    db.take_request("user:a", now, 60_000, 5)
                        .expect("take")
                        .admitted
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().expect("thread")))
            .sum()
    });
    assert_eq!(admitted, 5);
    // Another subject has its own window.
    assert!(
        db.take_request("guest:10.0.0.1", now, 60_000, 5)
            .expect("take")
            .admitted
    );
    // A minute later the window is empty again.
    let later = db
        .take_request("user:a", now + 60_000, 60_000, 5)
        .expect("take");
    assert!(later.admitted);
    assert_eq!(later.used, 1);
    let c = db
        .counters("user:a", now + 60_000, 60_000, 7)
        .expect("counters");
    assert_eq!((c.requests, c.oldest_request_ms), (1, Some(now + 60_000)));
}

#[test]
fn tokens_add_up_per_day_and_reset_clears_a_subject() {
    let (db, _dir) = db();
    db.add_tokens("user:a", 100, 40).expect("add");
    db.add_tokens("user:a", 100, u64::MAX)
        .expect("add saturates");
    db.add_tokens("user:a", 101, 5).expect("add");
    db.take_request("user:a", 0, 60_000, 10).expect("take");
    assert_eq!(
        db.counters("user:a", 0, 60_000, 100)
            .expect("c")
            .tokens_today,
        i64::MAX as u64
    );
    assert_eq!(
        db.counters("user:a", 0, 60_000, 101)
            .expect("c")
            .tokens_today,
        5
    );
    db.reset("user:a").expect("reset");
    let c = db.counters("user:a", 0, 60_000, 101).expect("c");
    assert_eq!((c.requests, c.tokens_today), (0, 0));
}

#[test]
fn overrides_round_trip_and_need_an_existing_user() {
    let (db, _dir) = db();
    let none = UserId::from_string("nobody");
    let o = QuotaOverrides {
        requests_per_minute: Some(None),
        tokens_per_day: Some(Some(1000)),
        max_concurrent: None,
    };
    assert!(matches!(
        db.set_overrides(&none, &o, Timestamp(0)),
        Err(RepoError::NotFound)
    ));
    let system = UserId::system();
    db.set_overrides(&system, &o, Timestamp(0)).expect("set");
    assert_eq!(db.overrides(&system).expect("get"), o);
    db.set_overrides(&system, &QuotaOverrides::default(), Timestamp(0))
        .expect("clear");
    assert!(db.overrides(&system).expect("get").is_empty());
}
