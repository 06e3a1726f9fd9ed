//! The audit log: which events are recorded, one entry per lock window for
//! throttled attempts, and retention.

use offgrid_auth::{Actor, SetupProof};
use offgrid_domain::Role;

use crate::fixtures::{account, audit_actions, fixture, is_throttled, login, operator};

#[test]
fn audit_records_security_events() {
    let f = fixture();
    f.auth
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
        .expect("setup");
    let _ = login(&f.auth, "root", "bad-password");
    login(&f.auth, "root", "root-password").expect("login");
    let page = f
        .auth
        .repos()
        .audit
        .list(&offgrid_domain::audit::AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    let actions: Vec<_> = page.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["login.ok", "login.failed", "setup.admin_created"]
    );
}

#[test]
fn throttled_attempts_make_one_audit_entry_per_lock_window() {
    let f = fixture();
    f.auth
        .create_user(account("alice", Role::User), None, &operator())
        .expect("create");
    for _ in 0..3 {
        let _ = login(&f.auth, "alice", "wrong-password");
    }
    for _ in 0..20 {
        assert!(is_throttled(&login(&f.auth, "alice", "wrong-password")));
    }
    // Refusals write nothing: the window's first makes the entry, the
    // rest are counted in memory until the next flush (once a minute).
    let throttled = audit_actions(&f.auth, "login.throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0].repeats, 1, "written once, not per refusal");
    f.auth.flush_throttled_audit();
    let throttled = audit_actions(&f.auth, "login.throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0].repeats, 20);
    // A key still being refused stays known: more refusals wait for the
    // next flush instead of writing again.
    for _ in 0..5 {
        assert!(is_throttled(&login(&f.auth, "alice", "wrong-password")));
    }
    assert_eq!(audit_actions(&f.auth, "login.throttled")[0].repeats, 20);
    f.auth.flush_throttled_audit();
    assert_eq!(audit_actions(&f.auth, "login.throttled")[0].repeats, 25);
}

#[test]
fn audit_retention_prunes_entries_older_than_the_setting() {
    let f = fixture();
    let old = offgrid_auth::service::now().plus_secs(-100 * 86_400);
    f.auth
        .repos()
        .audit
        .append(offgrid_domain::audit::NewAuditEvent {
            at: old,
            actor_id: None,
            actor: None,
            action: "login.failed".into(),
            target: Some("ancient".into()),
            client_addr: None,
            details: None,
        })
        .expect("append");
    f.auth
        .setup(
            account("root", Role::Admin),
            SetupProof::Local,
            &Actor::default(),
        )
        .expect("setup");
    assert_eq!(f.auth.prune_audit(0, &operator()).expect("off"), 0);
    assert_eq!(f.auth.prune_audit(90, &operator()).expect("prune"), 1);
    assert!(audit_actions(&f.auth, "login.failed").is_empty());
    assert_eq!(audit_actions(&f.auth, "setup.admin_created").len(), 1);
    assert_eq!(audit_actions(&f.auth, "audit.pruned").len(), 1);
}
