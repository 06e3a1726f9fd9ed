//! Upgrading a database made by the previous release's schema (the
//! migrations before the workspace: accounts, keys, logins, audit, usage)
//! with data in it: every row survives, and the new features work for the
//! accounts that were already there.

use diesel::Connection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::MigrationHarness;
use offgrid_domain::audit::{AuditQuery, NewAuditEvent};
use offgrid_domain::quota::QuotaOverrides;
use offgrid_domain::repo::{
    AuditRepository, ChatSessionRepository, QuotaRepository, UsageRepository, UserRepository,
};
use offgrid_domain::usage::NewUsage;
use offgrid_domain::user::NewUser;
use offgrid_domain::workspace::{NewChatSession, Reader};
use offgrid_domain::{Role, Scope, Timestamp};
use offgrid_storage::{Database, MIGRATIONS};

/// The first migration of the release after the one being upgraded from.
const FIRST_NEW: &str = "2026-11-23-000004_workspace";

#[test]
fn a_previous_release_database_upgrades_with_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offgrid.db");
    // The previous release's schema: every migration before FIRST_NEW.
    {
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf8")).expect("connect");
        // Also creates diesel's bookkeeping table.
        let mut all = conn.pending_migrations(MIGRATIONS).expect("migrations");
        all.sort_by_key(|m| m.name().to_string());
        assert!(all.iter().any(|m| m.name().to_string() == FIRST_NEW));
        for m in all.iter().take_while(|m| m.name().to_string() != FIRST_NEW) {
            conn.run_migration(m).expect("old migration");
        }
    }
    let db = Database::open(&path).expect("open");
    let before = db.migration_status().expect("status");
    assert!(before.iter().any(|m| !m.applied), "new migrations pending");

    // Data as the previous release wrote it.
    let mut users = Vec::new();
    for (name, role) in [
        ("ann", Role::User),
        ("root", Role::Admin),
        ("vic", Role::Viewer),
    ] {
        let u = UserRepository::create(
            &db,
            NewUser {
                username: name.to_owned(),
                email: Some(format!("{name}@example.org")),
                display_name: None,
                role,
                password_hash: format!("hash-of-{name}"),
            },
            Timestamp(1_800_000_000),
        )
        .expect("user");
        users.push(u);
    }
    AuditRepository::append(
        &db,
        NewAuditEvent {
            at: Timestamp(1_800_000_001),
            actor_id: None,
            actor: Some("root".into()),
            action: "user.created".into(),
            target: Some(users[0].id.to_string()),
            client_addr: None,
            details: None,
        },
    )
    .expect("audit");
    UsageRepository::record(
        &db,
        NewUsage {
            at: Timestamp(1_800_000_002),
            user_id: Some(users[0].id.clone()),
            api_key_id: None,
            model: "m".into(),
            endpoint: "chat.completions".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            duration_ms: 100,
        },
    )
    .expect("usage");

    // The upgrade applies exactly the new migrations.
    let applied = db.migrate().expect("upgrade");
    let pending = before.iter().filter(|m| !m.applied).count();
    assert_eq!(applied.len(), pending, "{applied:?}");
    assert!(
        db.migration_status()
            .expect("status")
            .iter()
            .all(|m| m.applied)
    );

    // Everything is still there.
    for u in &users {
        let again = UserRepository::get(&db, &u.id).expect("user kept");
        assert_eq!(again, *u);
    }
    let log = AuditRepository::list(
        &db,
        &AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .expect("audit kept");
    assert!(log.data.iter().any(|e| e.action == "user.created"));
    let totals = UsageRepository::totals(&db, &Scope::owned_by(users[0].id.clone()), Timestamp(0))
        .expect("usage kept");
    assert_eq!(totals.first().map(|t| t.prompt_tokens), Some(10));

    // And the new features work for the old accounts.
    let session = ChatSessionRepository::create(
        &db,
        NewChatSession {
            owner: users[0].id.clone(),
            title: "After the upgrade".into(),
            model: None,
            preset_id: None,
        },
        Timestamp(1_800_000_100),
    )
    .expect("session");
    let seen = ChatSessionRepository::get(&db, &Reader::user(users[0].id.clone()), &session.id)
        .expect("visible");
    assert_eq!(seen.item.owner.username, "ann");
    QuotaRepository::set_overrides(
        &db,
        &users[0].id,
        &QuotaOverrides {
            requests_per_minute: Some(Some(5)),
            ..QuotaOverrides::default()
        },
        Timestamp(1_800_000_100),
    )
    .expect("quota");
}
