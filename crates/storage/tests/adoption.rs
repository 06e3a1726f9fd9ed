//! The first admin's setup adopts what single-user mode made: sessions and
//! presets owned by `system` become the admin's in the same transaction,
//! or stay with `system` when adoption is off.

use offgrid_domain::repo::{ChatSessionRepository, PresetRepository, UserRepository};
use offgrid_domain::user::NewUser;
use offgrid_domain::workspace::{NewChatSession, PresetFields, Reader};
use offgrid_domain::{Role, Timestamp, UserId};
use offgrid_storage::Database;

fn admin(name: &str) -> NewUser {
    NewUser {
        username: name.to_owned(),
        email: None,
        display_name: None,
        role: Role::Admin,
        password_hash: "hash".to_owned(),
    }
}

#[test]
fn setup_adopts_the_system_users_work_or_leaves_it_when_told() {
    for adopt in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
        db.migrate().expect("migrate");
        let system = UserId::system();
        let session = ChatSessionRepository::create(
            &db,
            NewChatSession {
                owner: system.clone(),
                title: "From single-user days".into(),
                model: None,
                preset_id: None,
            },
            Timestamp(1),
        )
        .expect("session");
        let preset = PresetRepository::create(
            &db,
            &system,
            &PresetFields {
                name: "Mine".into(),
                ..PresetFields::default()
            },
            Timestamp(1),
        )
        .expect("preset");
        let root = db
            .create_first_admin(admin("root"), Timestamp(2), adopt)
            .expect("setup");
        let owner = if adopt { &root.id } else { &system };
        let as_owner = Reader::user(owner.clone());
        let s = ChatSessionRepository::get(&db, &as_owner, &session.id).expect("visible");
        assert_eq!(&s.item.owner.id, owner, "adopt={adopt}");
        let p = PresetRepository::get(&db, &as_owner, &preset.id).expect("visible");
        assert_eq!(&p.owner.id, owner, "adopt={adopt}");
        // A second setup adopts nothing: it is refused.
        assert!(
            db.create_first_admin(admin("root2"), Timestamp(3), adopt)
                .is_err()
        );
        assert!(UserRepository::get_by_username(&db, "root2").is_err());
    }
}
