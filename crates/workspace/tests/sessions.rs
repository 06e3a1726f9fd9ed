//! Chat sessions and their shares through `Workspace` on a real SQLite
//! file: every caller against every action, and the owner's data unchanged
//! after each refusal.

mod support;

use offgrid_domain::audit::AuditQuery;
use offgrid_domain::repo::{AuditRepository, GrantRepository, UserRepository};
use offgrid_domain::workspace::{GrantLevel, ResourceKind};
use offgrid_domain::{ChatSessionId, Role, UserId};
use offgrid_workspace::sessions::ListRequest;
use offgrid_workspace::{Actor, SessionPermission, ShareTarget, WorkspaceConfig, WorkspaceError};
use support::*;

#[test]
fn another_users_session_is_not_found_for_every_action() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let s =
        w.ws.create_session(&ann, Some("Ann's plans"), None, None)
            .expect("create");
    let id = s.session.id.clone();
    w.ws.add_messages(&ann, &id, &say("secret")).expect("add");

    assert!(is_not_found(w.ws.get_session(&bob, &id)));
    assert!(is_not_found(w.ws.messages(&bob, &id)));
    assert!(is_not_found(w.ws.update_session(
        &bob,
        &id,
        Some("mine now"),
        None,
        None
    )));
    assert!(is_not_found(w.ws.delete_session(&bob, &id)));
    assert!(is_not_found(w.ws.add_messages(&bob, &id, &say("hi"))));
    assert!(is_not_found(w.ws.session_shares(&bob, &id)));
    assert!(is_not_found(w.ws.share_session(
        &bob,
        &id,
        &ShareTarget::Username("bob".into()),
        GrantLevel::Read
    )));
    assert!(is_not_found(w.ws.revoke_session_share(
        &bob,
        &id,
        &id_of(&bob)
    )));
    // An id that does not exist answers the same.
    let missing = ChatSessionId::generate();
    assert!(is_not_found(w.ws.get_session(&bob, &missing)));
    // Bob's listings show nothing of Ann's, not even with all=true.
    for request in [
        ListRequest::default(),
        ListRequest {
            shared: true,
            ..ListRequest::default()
        },
    ] {
        let page = w.ws.list_sessions(&bob, &request).expect("list");
        assert!(page.data.is_empty());
    }
    assert!(is_forbidden(w.ws.list_sessions(
        &bob,
        &ListRequest {
            all: true,
            ..ListRequest::default()
        }
    )));
    // Ann's session is as she left it.
    let (view, messages) = w.ws.get_session(&ann, &id).expect("get");
    assert_eq!(view.session.title, "Ann's plans");
    assert_eq!(view.session.message_count, 1);
    assert_eq!(messages.map(|m| m.len()), Some(1));
}

#[test]
fn share_levels_give_exactly_their_rights_and_revoking_ends_them() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let cat = w.user("cat", Role::User);
    let id =
        w.ws.create_session(&ann, Some("Trip"), None, None)
            .expect("create")
            .session
            .id;
    let share = |level| {
        w.ws.share_session(&ann, &id, &ShareTarget::Username("bob".into()), level)
            .expect("share")
    };

    // read: view, not write, not rename, not share.
    let (_, created) = share(GrantLevel::Read);
    assert!(created);
    let (view, _) = w.ws.get_session(&bob, &id).expect("read");
    assert_eq!(view.permission, SessionPermission::Read);
    assert!(is_forbidden(w.ws.add_messages(&bob, &id, &say("hi"))));
    assert!(is_forbidden(w.ws.update_session(
        &bob,
        &id,
        Some("x"),
        None,
        None
    )));
    assert!(is_forbidden(w.ws.session_shares(&bob, &id)));
    let shared =
        w.ws.list_sessions(
            &bob,
            &ListRequest {
                shared: true,
                ..ListRequest::default()
            },
        )
        .expect("list shared");
    assert_eq!(shared.data.len(), 1);

    // write: add messages and change the model, still no rename or share.
    let (grant, created) = share(GrantLevel::Write);
    assert!(!created);
    assert_eq!(grant.level, GrantLevel::Write);
    w.ws.add_messages(&bob, &id, &say("from bob"))
        .expect("write");
    w.ws.update_session(&bob, &id, None, Some(Some("m")), None)
        .expect("model");
    assert!(is_forbidden(w.ws.update_session(
        &bob,
        &id,
        Some("x"),
        None,
        None
    )));
    assert!(is_forbidden(w.ws.share_session(
        &bob,
        &id,
        &ShareTarget::Username("cat".into()),
        GrantLevel::Read
    )));

    // admin: rename and share, never delete.
    share(GrantLevel::Admin);
    w.ws.update_session(&bob, &id, Some("Bob's trip"), None, None)
        .expect("rename");
    w.ws.share_session(
        &bob,
        &id,
        &ShareTarget::Username("cat".into()),
        GrantLevel::Write,
    )
    .expect("bob shares with cat");
    assert_eq!(w.ws.session_shares(&ann, &id).expect("shares").len(), 2);
    assert!(is_forbidden(w.ws.delete_session(&bob, &id)));

    // Revoking takes effect on the next call.
    w.ws.revoke_session_share(&ann, &id, &id_of(&bob))
        .expect("revoke");
    assert!(is_not_found(w.ws.get_session(&bob, &id)));
    assert!(is_not_found(w.ws.revoke_session_share(
        &ann,
        &id,
        &id_of(&bob)
    )));
    // Cat leaves on her own.
    w.ws.revoke_session_share(&cat, &id, &id_of(&cat))
        .expect("leave");
    assert!(is_not_found(w.ws.get_session(&cat, &id)));

    // Every share change is in the audit log.
    let log = AuditRepository::list(
        &w.db,
        &AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        },
    )
    .expect("audit");
    let actions: Vec<&str> = log.data.iter().map(|e| e.action.as_str()).collect();
    for action in ["share.granted", "share.changed", "share.revoked"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[test]
fn viewers_read_at_most_and_guests_have_no_workspace() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let vic = w.user("vic", Role::Viewer);
    let gus = w.user("gus", Role::Guest);
    let id =
        w.ws.create_session(&ann, None, None, None)
            .expect("create")
            .session
            .id;
    assert!(is_forbidden(w.ws.create_session(&vic, None, None, None)));
    let (grant, _) =
        w.ws.share_session(
            &ann,
            &id,
            &ShareTarget::Username("vic".into()),
            GrantLevel::Admin,
        )
        .expect("share with a viewer");
    assert_eq!(grant.level, GrantLevel::Read, "capped at read");
    let (view, messages) = w.ws.get_session(&vic, &id).expect("viewer reads");
    assert_eq!(view.permission, SessionPermission::Read);
    assert!(messages.is_some());
    assert!(is_forbidden(w.ws.add_messages(&vic, &id, &say("x"))));

    assert!(matches!(
        w.ws.share_session(
            &ann,
            &id,
            &ShareTarget::Username("gus".into()),
            GrantLevel::Read
        ),
        Err(WorkspaceError::Invalid { .. })
    ));
    assert!(is_forbidden(w.ws.create_session(&gus, None, None, None)));
    assert!(is_forbidden(
        w.ws.list_sessions(&gus, &ListRequest::default())
    ));
    let anonymous = actor(None, Role::Guest);
    assert!(is_forbidden(w.ws.get_session(&anonymous, &id)));
}

#[test]
fn sharing_with_oneself_the_owner_or_nobody_is_refused() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let id =
        w.ws.create_session(&ann, None, None, None)
            .expect("create")
            .session
            .id;
    let try_share =
        |who: &Actor, target: ShareTarget| w.ws.share_session(who, &id, &target, GrantLevel::Read);
    assert!(matches!(
        try_share(&ann, ShareTarget::Username("ann".into())),
        Err(WorkspaceError::Invalid { .. })
    ));
    assert!(matches!(
        try_share(&ann, ShareTarget::Username("nobody".into())),
        Err(WorkspaceError::UserNotFound)
    ));
    assert!(matches!(
        try_share(&ann, ShareTarget::UserId(UserId::system())),
        Err(WorkspaceError::UserNotFound)
    ));
    // Bob, given admin, cannot share back with the owner.
    w.ws.share_session(
        &ann,
        &id,
        &ShareTarget::UserId(id_of(&bob)),
        GrantLevel::Admin,
    )
    .expect("share");
    assert!(matches!(
        try_share(&bob, ShareTarget::Username("ann".into())),
        Err(WorkspaceError::Invalid { .. })
    ));
}

#[test]
fn admins_see_every_title_and_read_messages_only_when_allowed() {
    for admin_can_read_chats in [true, false] {
        let w = world(WorkspaceConfig {
            admin_can_read_chats,
            ..WorkspaceConfig::default()
        });
        let ann = w.user("ann", Role::User);
        let root = w.user("root", Role::Admin);
        let id =
            w.ws.create_session(&ann, Some("Diary"), None, None)
                .expect("create")
                .session
                .id;
        w.ws.add_messages(&ann, &id, &say("dear diary"))
            .expect("add");
        let all =
            w.ws.list_sessions(
                &root,
                &ListRequest {
                    all: true,
                    ..ListRequest::default()
                },
            )
            .expect("all");
        assert_eq!(all.data.len(), 1);
        assert_eq!(all.data[0].session.message_count, 1);
        // Without all=true an admin lists their own, like anyone.
        let own =
            w.ws.list_sessions(&root, &ListRequest::default())
                .expect("own");
        assert!(own.data.is_empty());
        let (view, messages) = w.ws.get_session(&root, &id).expect("get");
        // With the setting off the role shows the title only: "read".
        let expected = if admin_can_read_chats {
            SessionPermission::Admin
        } else {
            SessionPermission::Read
        };
        assert_eq!(view.permission, expected);
        assert_eq!(messages.is_some(), admin_can_read_chats);
        assert_eq!(w.ws.messages(&root, &id).is_ok(), admin_can_read_chats);
        if !admin_can_read_chats {
            // Nothing that would let the admin read it some other way.
            let puppet = w.user("puppet", Role::User);
            let to_puppet = ShareTarget::UserId(id_of(&puppet));
            assert!(is_forbidden(w.ws.share_session(
                &root,
                &id,
                &to_puppet,
                GrantLevel::Read
            )));
            assert!(is_forbidden(w.ws.add_messages(&root, &id, &say("psst"))));
            assert!(is_forbidden(w.ws.update_session(
                &root,
                &id,
                Some("x"),
                None,
                None
            )));
            assert!(is_forbidden(w.ws.session_shares(&root, &id)));
            assert!(is_not_found(w.ws.get_session(&puppet, &id)));
        }
        // Shared with the admin, the messages are readable either way.
        w.ws.share_session(
            &ann,
            &id,
            &ShareTarget::Username("root".into()),
            GrantLevel::Read,
        )
        .expect("share");
        assert!(w.ws.messages(&root, &id).is_ok());
        // And an admin may delete it.
        w.ws.delete_session(&root, &id).expect("admin deletes");
        assert!(is_not_found(w.ws.get_session(&ann, &id)));
    }
}

#[test]
fn listings_page_by_cursor_search_titles_and_refuse_bad_input() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    for i in 0..7 {
        w.ws.create_session(&ann, Some(&format!("talk {i} 100%_done")), None, None)
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            w.ws.list_sessions(
                &ann,
                &ListRequest {
                    limit: Some(3),
                    cursor: cursor.clone(),
                    ..ListRequest::default()
                },
            )
            .expect("page");
        seen.extend(page.data.iter().map(|v| v.session.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c.encode()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "every session once");
    let found = |q: &str| {
        w.ws.list_sessions(
            &ann,
            &ListRequest {
                q: Some(q.to_owned()),
                ..ListRequest::default()
            },
        )
        .expect("search")
        .data
        .len()
    };
    assert_eq!(found("TALK 3"), 1, "case-insensitive");
    assert_eq!(found("%_"), 7, "LIKE wildcards are literal");
    assert_eq!(found("_x"), 0);
    for bad in [
        ListRequest {
            limit: Some(0),
            ..ListRequest::default()
        },
        ListRequest {
            limit: Some(101),
            ..ListRequest::default()
        },
        ListRequest {
            cursor: Some("1' OR 1=1 --".into()),
            ..ListRequest::default()
        },
        ListRequest {
            q: Some("x".repeat(201)),
            ..ListRequest::default()
        },
    ] {
        assert!(matches!(
            w.ws.list_sessions(&ann, &bad),
            Err(WorkspaceError::Invalid { .. })
        ));
    }
    assert!(matches!(
        w.ws.create_session(&ann, Some(&"t".repeat(201)), None, None),
        Err(WorkspaceError::Invalid { .. })
    ));
    assert_eq!(
        w.ws.create_session(&ann, Some("   "), None, None)
            .expect("blank title")
            .session
            .title,
        "New chat"
    );
}

#[test]
fn deleting_a_user_or_a_session_leaves_no_shares_behind() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let kept =
        w.ws.create_session(&ann, Some("kept"), None, None)
            .expect("create")
            .session
            .id;
    let gone =
        w.ws.create_session(&ann, Some("gone"), None, None)
            .expect("create")
            .session
            .id;
    for id in [&kept, &gone] {
        w.ws.share_session(
            &ann,
            id,
            &ShareTarget::Username("bob".into()),
            GrantLevel::Write,
        )
        .expect("share");
    }
    w.ws.delete_session(&ann, &gone).expect("delete");
    // The table's trigger took the share with the session.
    let orphans =
        GrantRepository::grants(&w.db, ResourceKind::Session, gone.as_str()).expect("grants");
    assert!(orphans.is_empty());
    let shared =
        w.ws.list_sessions(
            &bob,
            &ListRequest {
                shared: true,
                ..ListRequest::default()
            },
        )
        .expect("list");
    assert_eq!(shared.data.len(), 1);
    // Bob's account goes: his share on `kept` goes with it.
    UserRepository::delete(&w.db, &id_of(&bob), None).expect("delete bob");
    assert!(w.ws.session_shares(&ann, &kept).expect("shares").is_empty());
}

#[test]
fn a_session_only_names_presets_its_owner_may_use() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let id =
        w.ws.create_session(&ann, None, None, None)
            .expect("create")
            .session
            .id;
    w.ws.share_session(
        &ann,
        &id,
        &ShareTarget::Username("bob".into()),
        GrantLevel::Write,
    )
    .expect("share");
    let fields = |name: &str, is_public| offgrid_domain::workspace::PresetFields {
        name: name.to_owned(),
        system_prompt: "secret instructions".to_owned(),
        is_public,
        ..Default::default()
    };
    let private =
        w.ws.create_preset(&bob, &fields("bob's", false))
            .expect("preset");
    let public =
        w.ws.create_preset(&bob, &fields("shared", true))
            .expect("preset");
    // Bob may write to Ann's session, but not slip his private preset in.
    let refused =
        w.ws.update_session(&bob, &id, None, None, Some(Some(private.id.as_str())));
    assert!(matches!(refused, Err(WorkspaceError::Invalid { .. })));
    let set =
        w.ws.update_session(&bob, &id, None, None, Some(Some(public.id.as_str())))
            .expect("a public preset");
    assert_eq!(set.session.preset_id.as_deref(), Some(public.id.as_str()));
}

#[test]
fn storage_refuses_an_heir_who_cannot_own_even_without_the_services_checks() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let vic = w.user("vic", Role::Viewer);
    let gus = w.user("gus", Role::Guest);
    for heir in [&vic, &gus, &ann] {
        assert_eq!(
            UserRepository::delete(&w.db, &id_of(&ann), Some(&id_of(heir))),
            Err(offgrid_domain::RepoError::Conflict("transfer_to".into()))
        );
    }
    assert_eq!(
        UserRepository::delete(&w.db, &id_of(&ann), Some(&UserId::system())),
        Err(offgrid_domain::RepoError::SystemUser)
    );
    // Ann is still there.
    assert!(UserRepository::get(&w.db, &id_of(&ann)).is_ok());
}
