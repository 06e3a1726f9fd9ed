//! Invitations: statuses, paging, revocation, and single use of a code,
//! under a race too.

use std::sync::{Arc, Barrier};

use offgrid_domain::invitation::{InvitationStatus, Inviter, NewInvitation};
use offgrid_domain::repo::{InvitationRepository, UserRepository};
use offgrid_domain::user::UserQuery;
use offgrid_domain::{InvitationId, RepoError, Role, Timestamp};
use offgrid_storage::Database;

use super::{NOW, db, new_user};

fn invite(
    db: &Database,
    code: &[u8],
    role: Role,
    created_at: i64,
    expires_at: i64,
) -> InvitationId {
    db_invite(db, code, role, Timestamp(created_at), Timestamp(expires_at))
}

fn db_invite(
    db: &Database,
    code: &[u8],
    role: Role,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> InvitationId {
    InvitationRepository::create(
        db,
        NewInvitation {
            code_hash: code.to_vec(),
            role,
            note: Some(format!("for {}", String::from_utf8_lossy(code))),
            created_by: Inviter {
                id: None,
                name: "offgrid-admin".into(),
            },
            created_at,
            expires_at,
        },
    )
    .expect("create invitation")
    .id
}

fn user_count(db: &Database) -> i64 {
    UserRepository::list(
        db,
        &UserQuery {
            search: None,
            role: None,
            limit: 1,
            offset: 0,
        },
    )
    .expect("list users")
    .total
}

#[test]
fn invitations_are_listed_newest_first_with_their_statuses_and_paged() {
    let t = db();
    let day = 86_400;
    let n = NOW.0;
    let pending = invite(&t.db, b"pending", Role::User, n - 40, n + day);
    let used = invite(&t.db, b"used", Role::Viewer, n - 30, n + day);
    let revoked = invite(&t.db, b"revoked", Role::Admin, n - 20, n + day);
    let expired = invite(&t.db, b"expired", Role::User, n - 10, n - 1);
    let (_, user) =
        t.db.accept(b"used", new_user("vera", Role::User), NOW)
            .expect("accept");
    t.db.revoke(&revoked, NOW).expect("revoke");

    let first = InvitationRepository::list(&t.db, 3, None).expect("page 1");
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = InvitationRepository::list(&t.db, 3, Some(&cursor)).expect("page 2");
    assert!(second.next_cursor.is_none());
    let all: Vec<_> = first.data.iter().chain(&second.data).collect();
    let ids: Vec<_> = all.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, [expired, revoked, used.clone(), pending]);
    let statuses: Vec<_> = all.iter().map(|i| i.status(NOW)).collect();
    assert_eq!(
        statuses,
        [
            InvitationStatus::Expired,
            InvitationStatus::Revoked,
            InvitationStatus::Used,
            InvitationStatus::Pending
        ]
    );
    let used_row = all[2];
    assert_eq!(used_row.used_at, Some(NOW));
    let by = used_row.used_by.as_ref().expect("used by");
    assert_eq!((&by.id, by.username.as_str()), (&user.id, "vera"));
    assert_eq!(
        user.role,
        Role::Viewer,
        "the invitation's role, not the input's"
    );
    assert_eq!(used_row.created_by.name, "offgrid-admin");
    assert_eq!(used_row.note.as_deref(), Some("for used"));

    // The record outlives the account it made.
    UserRepository::delete(&t.db, &user.id, None).expect("delete vera");
    let after = InvitationRepository::get(&t.db, &used).expect("still there");
    assert_eq!(after.status(NOW), InvitationStatus::Used);
    assert!(after.used_by.is_none());
}

#[test]
fn a_code_is_accepted_only_while_pending_and_only_once() {
    let t = db();
    let n = NOW.0;
    invite(&t.db, b"good", Role::User, n, n + 60);
    invite(&t.db, b"old", Role::User, n - 120, n - 60);
    let withdrawn = invite(&t.db, b"withdrawn", Role::User, n, n + 60);
    t.db.revoke(&withdrawn, NOW).expect("revoke");
    let before = user_count(&t.db);

    for code in [&b"wrong"[..], b"old", b"withdrawn"] {
        let refused = t.db.accept(code, new_user("x", Role::User), NOW);
        assert!(matches!(refused, Err(RepoError::NotFound)), "{code:?}");
    }
    // The expiry is exclusive: at `expires_at` the code no longer works.
    let at_expiry =
        t.db.accept(b"good", new_user("x", Role::User), Timestamp(n + 60));
    assert!(matches!(at_expiry, Err(RepoError::NotFound)));
    assert!(t.db.find_pending(b"good", NOW).expect("find").is_some());
    assert!(t.db.find_pending(b"old", NOW).expect("find").is_none());

    // A taken username rolls everything back: the code stays pending.
    UserRepository::create(&t.db, new_user("taken", Role::User), NOW).expect("user");
    let clash = t.db.accept(b"good", new_user("taken", Role::User), NOW);
    assert!(matches!(clash, Err(RepoError::Conflict(ref f)) if f == "username"));
    assert!(t.db.find_pending(b"good", NOW).expect("find").is_some());

    t.db.accept(b"good", new_user("first", Role::User), NOW)
        .expect("accept");
    let again = t.db.accept(b"good", new_user("second", Role::User), NOW);
    assert!(matches!(again, Err(RepoError::NotFound)));
    assert_eq!(user_count(&t.db), before + 2, "taken and first, not second");
    assert!(UserRepository::get_by_username(&t.db, "second").is_err());
}

#[test]
fn revoking_refuses_used_and_unknown_invitations_and_is_idempotent() {
    let t = db();
    let n = NOW.0;
    let used = invite(&t.db, b"used", Role::User, n, n + 60);
    t.db.accept(b"used", new_user("u", Role::User), NOW)
        .expect("accept");
    let refused = t.db.revoke(&used, NOW);
    assert!(matches!(refused, Err(RepoError::Conflict(ref f)) if f == "used"));
    assert_eq!(
        InvitationRepository::get(&t.db, &used)
            .expect("get")
            .status(NOW),
        InvitationStatus::Used
    );
    let unknown = t.db.revoke(&InvitationId::from_string("nope"), NOW);
    assert!(matches!(unknown, Err(RepoError::NotFound)));

    let open = invite(&t.db, b"open", Role::User, n, n + 60);
    let (first, revoked) = t.db.revoke(&open, NOW).expect("revoke");
    let (second, again) = t.db.revoke(&open, Timestamp(n + 5)).expect("again");
    assert!(revoked && !again);
    assert_eq!(first.revoked_at, Some(NOW));
    assert_eq!(second.revoked_at, Some(NOW), "the first revocation stands");
}

#[test]
fn concurrent_accepts_of_one_code_make_exactly_one_account() {
    let t = db();
    invite(&t.db, b"race", Role::User, NOW.0, NOW.0 + 60);
    let before = user_count(&t.db);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                db.accept(b"race", new_user(&format!("racer{i}"), Role::User), NOW)
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, RepoError::NotFound)),
        "{results:?}"
    );
    assert_eq!(user_count(&t.db), before + 1);
    let (invitation, user) = winners[0];
    assert_eq!(invitation.used_by.as_ref().map(|u| &u.id), Some(&user.id));
}
