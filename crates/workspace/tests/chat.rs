//! What a chat completion in a session reads before generating: write
//! access checked, the history bounded, the preset resolved.

mod support;

use offgrid_domain::Role;
use offgrid_domain::workspace::{GrantLevel, PresetFields};
use offgrid_workspace::chat::MAX_HISTORY_BYTES;
use offgrid_workspace::sessions::MAX_MESSAGE_BYTES;
use offgrid_workspace::{ShareTarget, WorkspaceConfig, WorkspaceError};
use support::*;

#[test]
fn the_history_is_bounded_and_the_oldest_messages_are_left_out() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let s = w.ws.create_session(&ann, None, None, None).expect("create");
    let id = s.session.id.as_str().to_owned();
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    let total = MAX_HISTORY_BYTES / MAX_MESSAGE_BYTES + 3;
    for i in 0..total {
        w.ws.add_messages(&ann, &s.session.id, &say(&format!("{i:04}{}", &big[4..])))
            .expect("add");
    }
    let context =
        w.ws.chat_context(&ann, Some(&id), None, &[])
            .expect("context");
    let bytes: usize = context.history.iter().map(|m| m.content.len()).sum();
    assert!(bytes <= MAX_HISTORY_BYTES);
    assert_eq!(context.history.len() + context.omitted, total);
    assert_eq!(context.history.len(), MAX_HISTORY_BYTES / MAX_MESSAGE_BYTES);
    // The newest are kept, in order.
    let last = context.history.last().expect("kept");
    assert!(last.content.starts_with(&format!("{:04}", total - 1)));
    assert!(context.history.windows(2).all(|p| p[0].id < p[1].id));
}

#[test]
fn only_writers_chat_into_a_session_and_presets_resolve() {
    let w = world(WorkspaceConfig::default());
    let ann = w.user("ann", Role::User);
    let bob = w.user("bob", Role::User);
    let preset =
        w.ws.create_preset(
            &ann,
            &PresetFields {
                name: "Terse".into(),
                system_prompt: "Be brief.".into(),
                ..PresetFields::default()
            },
        )
        .expect("preset");
    let pid = preset.id.as_str().to_owned();
    let s =
        w.ws.create_session(&ann, None, None, Some(&pid))
            .expect("create");
    let id = s.session.id.as_str().to_owned();

    // The session's preset comes with it; the owner chats.
    let own =
        w.ws.chat_context(&ann, Some(&id), None, &[])
            .expect("owner");
    assert_eq!(own.preset.map(|p| p.id), Some(preset.id.clone()));
    // Not shared: not found; the private preset neither.
    assert!(is_not_found(w.ws.chat_context(&bob, Some(&id), None, &[])));
    assert!(is_not_found(w.ws.chat_context(&bob, None, Some(&pid), &[])));
    assert!(is_not_found(w.ws.chat_context(
        &bob,
        Some(&"z".repeat(10_000)),
        None,
        &[]
    )));
    // Read: forbidden; write: allowed.
    w.ws.share_session(
        &ann,
        &s.session.id,
        &ShareTarget::UserId(id_of(&bob)),
        GrantLevel::Read,
    )
    .expect("share");
    assert!(is_forbidden(w.ws.chat_context(&bob, Some(&id), None, &[])));
    w.ws.share_session(
        &ann,
        &s.session.id,
        &ShareTarget::UserId(id_of(&bob)),
        GrantLevel::Write,
    )
    .expect("share");
    let shared =
        w.ws.chat_context(&bob, Some(&id), None, &[])
            .expect("writer");
    // The session's preset is the owner's to choose, even if private.
    assert!(shared.preset.is_some());
    // A message too big to save is refused before any work.
    let huge = say(&"y".repeat(MAX_MESSAGE_BYTES + 1));
    assert!(matches!(
        w.ws.chat_context(&bob, Some(&id), None, &huge),
        Err(WorkspaceError::Invalid { .. })
    ));
    // A deleted preset: the session goes on without it.
    w.ws.delete_preset(&ann, &preset.id).expect("delete");
    let after =
        w.ws.chat_context(&ann, Some(&id), None, &[])
            .expect("owner");
    assert!(after.preset.is_none());
}
