//! Storage against a real SQLite file in a temporary directory.

use std::sync::Arc;

use offgrid_domain::audit::{AuditQuery, NewAuditEvent};
use offgrid_domain::repo::{
    ApiKeyRepository, AuditRepository, SessionRepository, ThrottleRepository, UserRepository,
};
use offgrid_domain::user::{LoginSession, NewApiKey, NewUser, UserPatch, UserQuery};
use offgrid_domain::{OperatorCapability, RepoError, Role, Scope, SessionId, Timestamp, UserId};
use offgrid_storage::Database;

#[path = "storage/invitations.rs"]
mod invitations;

const NOW: Timestamp = Timestamp(1_800_000_000);

struct TestDb {
    db: Database,
    _dir: tempfile::TempDir,
}

fn db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
    db.migrate().expect("migrate");
    TestDb { db, _dir: dir }
}

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        username: name.to_owned(),
        email: Some(format!("{name}@example.org")),
        display_name: None,
        role,
        password_hash: "hash".to_owned(),
    }
}

#[test]
fn migrations_run_up_down_up_on_a_real_file() {
    let t = db();
    let status = t.db.migration_status().expect("status");
    assert!(status.len() >= 3);
    assert!(status.iter().all(|m| m.applied));
    let reverted = t.db.revert_all_migrations().expect("down");
    assert_eq!(reverted.len(), status.len());
    assert!(
        t.db.migration_status()
            .expect("status")
            .iter()
            .all(|m| !m.applied)
    );
    let applied = t.db.migrate().expect("up again");
    assert_eq!(applied.len(), status.len());
    assert!(
        UserRepository::get(&t.db, &UserId::system())
            .expect("system user")
            .system
    );
}

#[test]
fn every_connection_has_wal_foreign_keys_and_busy_timeout() {
    let t = db();
    assert_eq!(t.db.pragma("journal_mode").expect("pragma"), "wal");
    // The pool hands out different connections to concurrent holders; check
    // several at once.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let db = t.db.clone();
            std::thread::spawn(move || {
                (
                    db.pragma("foreign_keys").expect("fk"),
                    db.pragma("busy_timeout").expect("bt"),
                )
            })
        })
        .collect();
    for h in handles {
        let (fk, bt) = h.join().expect("join");
        assert_eq!(fk, "1");
        assert!(bt.parse::<u32>().expect("number") >= 1000);
    }
}

#[test]
fn usernames_are_unique_without_regard_to_case() {
    let t = db();
    UserRepository::create(&t.db, new_user("Alice", Role::User), NOW).expect("create");
    let err = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect_err("dup");
    assert_eq!(err, RepoError::Conflict("username".into()));
    let found = t.db.find_for_login("ALICE").expect("find").expect("some");
    assert_eq!(found.user.username, "Alice");
    let by_mail = t.db.find_for_login("alice@example.org").expect("find");
    assert!(by_mail.is_some());
}

#[test]
fn system_user_cannot_log_in_be_promoted_or_deleted() {
    let t = db();
    assert!(t.db.find_for_login("system").expect("find").is_none());
    let promote = UserPatch {
        role: Some(Role::Admin),
        ..UserPatch::default()
    };
    assert_eq!(
        t.db.update(&UserId::system(), &promote, NOW),
        Err(RepoError::SystemUser)
    );
    assert_eq!(
        t.db.delete(&UserId::system(), None),
        Err(RepoError::SystemUser)
    );
    let page = UserRepository::list(
        &t.db,
        &UserQuery {
            search: None,
            role: None,
            limit: 50,
            offset: 0,
        },
    )
    .expect("list");
    assert_eq!(page.total, 0, "the system user is not listed as an account");
}

#[test]
fn first_admin_only_once_and_last_admin_is_protected() {
    let t = db();
    assert!(!t.db.admin_exists().expect("exists"));
    let admin =
        t.db.create_first_admin(new_user("root", Role::User), NOW, true)
            .expect("setup");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(
        t.db.create_first_admin(new_user("root2", Role::Admin), NOW, true)
            .map(|_| ()),
        Err(RepoError::Conflict("admin".into()))
    );
    let demote = UserPatch {
        role: Some(Role::User),
        ..UserPatch::default()
    };
    let disable = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    assert_eq!(
        t.db.update(&admin.id, &demote, NOW),
        Err(RepoError::LastAdmin)
    );
    assert_eq!(
        t.db.update(&admin.id, &disable, NOW),
        Err(RepoError::LastAdmin)
    );
    assert_eq!(t.db.delete(&admin.id, None), Err(RepoError::LastAdmin));

    let second =
        UserRepository::create(&t.db, new_user("second", Role::Admin), NOW).expect("create");
    let demoted = t.db.update(&admin.id, &demote, NOW).expect("now allowed");
    assert_eq!(demoted.role, Role::User);
    assert!(
        demoted.token_epoch > admin.token_epoch,
        "role change bumps the epoch"
    );
    assert_eq!(t.db.delete(&second.id, None), Err(RepoError::LastAdmin));
}

#[test]
fn api_keys_are_filtered_by_scope() {
    let t = db();
    let alice = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect("alice");
    let bob = UserRepository::create(&t.db, new_user("bob", Role::User), NOW).expect("bob");
    let key = |owner: &UserId, prefix: &str| NewApiKey {
        user_id: owner.clone(),
        name: "laptop".into(),
        prefix: prefix.into(),
        secret_hash: vec![1, 2, 3],
        expires_at: None,
        created_at: NOW,
        epoch: 0,
        can_create_keys: false,
        issuer: None,
    };
    let alice_scope = Scope::owned_by(alice.id.clone());
    let k = ApiKeyRepository::create(&t.db, &alice_scope, key(&alice.id, "og_aaaa")).expect("key");
    assert_eq!(
        ApiKeyRepository::create(&t.db, &alice_scope, key(&bob.id, "og_bbbb")).map(|_| ()),
        Err(RepoError::NotFound),
        "cannot create a key for someone else"
    );
    let bob_scope = Scope::owned_by(bob.id.clone());
    assert_eq!(
        ApiKeyRepository::list(&t.db, &bob_scope, &alice.id),
        Err(RepoError::NotFound)
    );
    assert_eq!(
        ApiKeyRepository::revoke(&t.db, &bob_scope, &bob.id, &k.id, NOW).map(|_| ()),
        Err(RepoError::NotFound),
        "bob cannot revoke alice's key even naming himself as owner"
    );
    let listed = ApiKeyRepository::list(&t.db, &alice_scope, &alice.id).expect("list");
    assert_eq!(listed.len(), 1);
    let revoked = ApiKeyRepository::revoke(
        &t.db,
        &Scope::operator(&OperatorCapability::assume()),
        &alice.id,
        &k.id,
        NOW,
    )
    .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(NOW));
    let (record, owner) = t.db.find_by_prefix("og_aaaa").expect("find").expect("some");
    assert_eq!(record.secret_hash, vec![1, 2, 3]);
    assert_eq!(owner.id, alice.id);
}

#[test]
fn deleting_a_user_cascades_to_keys_and_sessions() {
    let t = db();
    let alice = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect("alice");
    let sid = SessionId::generate();
    SessionRepository::create(
        &t.db,
        LoginSession {
            id: sid.clone(),
            user_id: alice.id.clone(),
            created_at: NOW,
            expires_at: NOW.plus_secs(60),
            last_seen_at: NOW,
            client_addr: None,
            user_agent: None,
            revoked_at: None,
            epoch: 0,
        },
    )
    .expect("session");
    assert!(
        SessionRepository::find(&t.db, &sid)
            .expect("find")
            .is_some()
    );
    t.db.delete(&alice.id, None).expect("delete");
    assert!(
        SessionRepository::find(&t.db, &sid)
            .expect("find")
            .is_none()
    );
}

#[test]
fn set_password_keeps_only_the_named_session_current() {
    let t = db();
    let alice = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect("alice");
    let session = |id: &SessionId| LoginSession {
        id: id.clone(),
        user_id: alice.id.clone(),
        created_at: NOW,
        expires_at: NOW.plus_secs(600),
        last_seen_at: NOW,
        client_addr: None,
        user_agent: None,
        revoked_at: None,
        epoch: 0,
    };
    let (keep, other) = (SessionId::generate(), SessionId::generate());
    SessionRepository::create(&t.db, session(&keep)).expect("s1");
    SessionRepository::create(&t.db, session(&other)).expect("s2");
    t.db.set_password(&alice.id, "new", Some(&keep), NOW)
        .expect("set");
    let alive = SessionRepository::list(&t.db, &Scope::owned_by(alice.id.clone()), &alice.id, NOW)
        .expect("list");
    assert_eq!(
        alive.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![keep]
    );
}

#[test]
fn throttle_counts_and_resets() {
    let t = db();
    let s =
        t.db.record_failure("user:alice", NOW, &|n| if n >= 2 { 10 } else { 0 })
            .expect("f1");
    assert_eq!((s.failures, s.locked_until), (1, None));
    let s =
        t.db.record_failure("user:alice", NOW, &|n| if n >= 2 { 10 } else { 0 })
            .expect("f2");
    assert_eq!((s.failures, s.locked_until), (2, Some(NOW.plus_secs(10))));
    assert_eq!(
        ThrottleRepository::get(&t.db, "user:alice")
            .expect("get")
            .failures,
        2
    );
    t.db.reset("user:alice").expect("reset");
    assert_eq!(
        ThrottleRepository::get(&t.db, "user:alice")
            .expect("get")
            .failures,
        0
    );
}

#[test]
fn concurrent_read_then_write_transactions_all_succeed() {
    // Deferred transactions that read and then write fail at once with
    // "database is locked" under concurrency; IMMEDIATE ones queue.
    let t = db();
    let db = Arc::new(t.db.clone());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for j in 0..25 {
                    db.record_failure(&format!("addr:{}", j % 3), NOW, &|_| 0)
                        .unwrap_or_else(|e| panic!("thread {i} write {j}: {e}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    let total: u32 = (0..3)
        .map(|k| {
            ThrottleRepository::get(&*db, &format!("addr:{k}"))
                .expect("get")
                .failures
        })
        .sum();
    assert_eq!(total, 8 * 25, "no lost updates");
}

#[test]
fn audit_filters_and_pages_newest_first() {
    let t = db();
    for (i, action) in ["login.ok", "login.failed", "user.created", "login.failed"]
        .iter()
        .enumerate()
    {
        t.db.append(NewAuditEvent {
            at: NOW.plus_secs(i as i64),
            actor_id: None,
            actor: Some("root".into()),
            action: (*action).into(),
            target: Some("alice".into()),
            client_addr: None,
            details: None,
        })
        .expect("append");
    }
    let all = AuditRepository::list(
        &t.db,
        &AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        },
    )
    .expect("list");
    assert_eq!(all.total, 4);
    assert_eq!(all.data.len(), 2);
    assert_eq!(all.data[0].action, "login.failed");
    let logins = AuditRepository::list(
        &t.db,
        &AuditQuery {
            action: Some("login.".into()),
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .expect("list");
    assert_eq!(logins.total, 3);
    let failed = AuditRepository::list(
        &t.db,
        &AuditQuery {
            action: Some("login.failed".into()),
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .expect("list");
    assert_eq!(failed.total, 2);
}

#[test]
fn online_backup_while_writing_is_consistent() {
    let t = db();
    let db = t.db.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..200 {
            UserRepository::create(&db, new_user(&format!("u{i}"), Role::User), NOW)
                .expect("create");
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    let dest = t._dir.path().join("backup.db");
    t.db.backup(&dest).expect("backup");
    writer.join().expect("join");
    let copy = Database::open(&dest).expect("open backup");
    assert!(
        copy.migration_status()
            .expect("status")
            .iter()
            .all(|m| m.applied)
    );
    assert!(UserRepository::get(&copy, &UserId::system()).is_ok());
    assert!(t.db.backup(&dest).is_err(), "refuses to overwrite");
}

#[test]
fn stale_throttle_counters_and_expired_sessions_are_pruned() {
    let t = db();
    ThrottleRepository::record_failure(&t.db, "user:old", NOW, &|_| 0).expect("old");
    let later = NOW.plus_secs(2 * 86_400);
    ThrottleRepository::record_failure(&t.db, "user:new", later, &|_| 0).expect("new");
    assert_eq!(
        ThrottleRepository::prune_stale(&t.db, later).expect("prune"),
        1
    );
    assert_eq!(
        ThrottleRepository::get(&t.db, "user:old")
            .expect("get")
            .failures,
        0
    );
    assert_eq!(
        ThrottleRepository::get(&t.db, "user:new")
            .expect("get")
            .failures,
        1
    );

    let alice = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect("alice");
    let session = |id: &SessionId, at: Timestamp| LoginSession {
        id: id.clone(),
        user_id: alice.id.clone(),
        created_at: at,
        expires_at: at.plus_secs(60),
        last_seen_at: at,
        client_addr: None,
        user_agent: None,
        revoked_at: None,
        epoch: 0,
    };
    let (old, new) = (SessionId::generate(), SessionId::generate());
    SessionRepository::create(&t.db, session(&old, NOW)).expect("old");
    SessionRepository::create(&t.db, session(&new, NOW.plus_secs(120))).expect("new");
    assert!(
        SessionRepository::find(&t.db, &old)
            .expect("find")
            .is_none(),
        "expired session pruned"
    );
    assert!(
        SessionRepository::find(&t.db, &new)
            .expect("find")
            .is_some()
    );
}

#[test]
fn session_and_key_inserts_are_refused_once_the_verified_epoch_is_stale() {
    // A login (or key creation) verifies the user at epoch 0; before it
    // stores its session, the user's password is reset (epoch 1). The insert
    // must not slip in at the new epoch.
    let t = db();
    let alice = UserRepository::create(&t.db, new_user("alice", Role::User), NOW).expect("alice");
    let verified_epoch = alice.token_epoch;
    t.db.set_password(&alice.id, "new hash", None, NOW)
        .expect("reset");
    let session = LoginSession {
        id: SessionId::generate(),
        user_id: alice.id.clone(),
        created_at: NOW,
        expires_at: NOW.plus_secs(600),
        last_seen_at: NOW,
        client_addr: None,
        user_agent: None,
        revoked_at: None,
        epoch: verified_epoch,
    };
    assert_eq!(
        SessionRepository::create(&t.db, session.clone()).map(|_| ()),
        Err(RepoError::StaleEpoch)
    );
    assert!(
        SessionRepository::find(&t.db, &session.id)
            .expect("find")
            .is_none()
    );
    let key = NewApiKey {
        user_id: alice.id.clone(),
        name: "laptop".into(),
        prefix: "og_stale".into(),
        secret_hash: vec![1],
        expires_at: None,
        created_at: NOW,
        epoch: verified_epoch,
        can_create_keys: true,
        issuer: None,
    };
    let scope = Scope::owned_by(alice.id.clone());
    assert_eq!(
        ApiKeyRepository::create(&t.db, &scope, key.clone()).map(|_| ()),
        Err(RepoError::StaleEpoch)
    );
    assert!(t.db.find_by_prefix("og_stale").expect("find").is_none());

    // At the current epoch both are stored, and carry it.
    let current = UserRepository::get(&t.db, &alice.id)
        .expect("get")
        .token_epoch;
    let stored = SessionRepository::create(
        &t.db,
        LoginSession {
            epoch: current,
            ..session
        },
    )
    .expect("session at the current epoch");
    assert_eq!(stored.epoch, current);
    let stored = ApiKeyRepository::create(
        &t.db,
        &scope,
        NewApiKey {
            epoch: current,
            ..key
        },
    )
    .expect("key at the current epoch");
    assert_eq!(stored.epoch, current);
    assert!(stored.can_create_keys, "the flag is stored");
    assert_eq!(
        ApiKeyRepository::get(&t.db, &scope, &alice.id, &stored.id),
        Ok(stored.clone())
    );
    assert_eq!(
        ApiKeyRepository::get(
            &t.db,
            &Scope::owned_by(UserId::generate()),
            &alice.id,
            &stored.id
        ),
        Err(RepoError::NotFound)
    );
}

#[test]
fn repeated_audit_events_coalesce_within_a_window_and_old_ones_are_pruned() {
    let t = db();
    let event = |at: Timestamp, addr: &str| NewAuditEvent {
        at,
        actor_id: None,
        actor: None,
        action: "login.throttled".into(),
        target: Some("alice".into()),
        client_addr: Some(addr.into()),
        details: None,
    };
    for i in 0..50 {
        t.db.append_coalesced(event(NOW.plus_secs(i), "10.0.0.1"), NOW, 1)
            .expect("append");
    }
    t.db.append_coalesced(event(NOW.plus_secs(60), "10.0.0.2"), NOW, 1)
        .expect("other address");
    // A new window (a later lock) starts a new entry.
    t.db.append_coalesced(event(NOW.plus_secs(900), "10.0.0.1"), NOW.plus_secs(800), 1)
        .expect("new window");
    let page = AuditRepository::list(
        &t.db,
        &AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .expect("list");
    let rows: Vec<_> = page
        .data
        .iter()
        .map(|e| (e.client_addr.clone().unwrap_or_default(), e.repeats))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("10.0.0.1".to_owned(), 1),
            ("10.0.0.2".to_owned(), 1),
            ("10.0.0.1".to_owned(), 50)
        ]
    );
    assert_eq!(page.data[2].last_at, Some(NOW.plus_secs(49)));

    assert_eq!(t.db.prune(NOW.plus_secs(61)).expect("prune"), 2);
    let left = AuditRepository::list(
        &t.db,
        &AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .expect("list");
    assert_eq!(left.total, 1);
}
