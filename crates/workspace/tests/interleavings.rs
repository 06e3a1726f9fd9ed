//! Random interleavings of create, share, change of level, revoke, delete
//! and user deletion (with and without transfer) by several users, on a
//! real SQLite file, against a model of the policy: after every step,
//! every user's read of every session (ever made) and their own listing
//! must be exactly what the policy says.

mod support;

use std::collections::HashMap;

use offgrid_domain::repo::UserRepository;
use offgrid_domain::workspace::GrantLevel;
use offgrid_domain::{ChatSessionId, Role};
use offgrid_workspace::sessions::ListRequest;
use offgrid_workspace::{Actor, SessionPermission, ShareTarget, WorkspaceConfig, WorkspaceError};
use proptest::prelude::*;
use support::*;

const ROLES: [Role; 5] = [
    Role::User,
    Role::User,
    Role::User,
    Role::Viewer,
    Role::Admin,
];
const NAMES: [&str; 5] = ["ann", "bob", "cat", "vic", "root"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Share(usize, usize, usize, GrantLevel),
    Revoke(usize, usize, usize),
    Delete(usize, usize),
    DeleteUser(usize, Option<usize>),
}

fn level() -> impl Strategy<Value = GrantLevel> {
    prop_oneof![
        Just(GrantLevel::Read),
        Just(GrantLevel::Write),
        Just(GrantLevel::Admin)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize).prop_map(Op::Create),
        5 => (0..5usize, 0..8usize, 0..5usize, level()).prop_map(|(a, s, t, l)| Op::Share(a, s, t, l)),
        2 => (0..5usize, 0..8usize, 0..5usize).prop_map(|(a, s, t)| Op::Revoke(a, s, t)),
        2 => (0..5usize, 0..8usize).prop_map(|(a, s)| Op::Delete(a, s)),
        1 => (0..3usize, proptest::option::of(0..5usize)).prop_map(|(u, h)| Op::DeleteUser(u, h)),
    ]
}

/// A live session in the model: its owner and its shares.
type Live = (usize, HashMap<usize, GrantLevel>);

/// The model: who owns each session ever made, its shares, who is alive.
struct Model {
    sessions: Vec<(ChatSessionId, Option<Live>)>,
    alive: [bool; 5],
}

impl Model {
    /// The policy's answer for `u` on session `s`.
    fn permission(&self, u: usize, s: usize) -> Option<SessionPermission> {
        let (owner, shares) = self.sessions[s].1.as_ref()?;
        if *owner == u {
            return Some(SessionPermission::Owner);
        }
        if ROLES[u] == Role::Admin {
            return Some(SessionPermission::Admin);
        }
        let level = shares.get(&u)?;
        Some(match (ROLES[u], level) {
            (Role::Viewer, _) | (_, GrantLevel::Read) => SessionPermission::Read,
            (_, GrantLevel::Write) => SessionPermission::Write,
            (_, GrantLevel::Admin) => SessionPermission::Admin,
        })
    }
}

fn is_admin_level(p: Option<SessionPermission>) -> bool {
    matches!(p, Some(SessionPermission::Owner | SessionPermission::Admin))
}

/// What a refused action must look like: unseen is `NotFound`, seen but
/// not enough is `Forbidden`.
fn check_refusal<T: std::fmt::Debug>(seen: bool, r: Result<T, WorkspaceError>, what: &str) {
    match (seen, r) {
        (false, Err(WorkspaceError::NotFound)) | (true, Err(WorkspaceError::Forbidden(_))) => {}
        (seen, other) => panic!("{what}: seen={seen}, got {other:?}"),
    }
}

fn run(ops: Vec<Op>) {
    let w = world(WorkspaceConfig::default());
    let actors: Vec<Actor> = NAMES.iter().zip(ROLES).map(|(n, r)| w.user(n, r)).collect();
    let mut m = Model {
        sessions: Vec::new(),
        alive: [true; 5],
    };
    let slot = |m: &Model, s: usize| (!m.sessions.is_empty()).then(|| s % m.sessions.len());
    for op in ops {
        match op {
            Op::Create(a) if m.alive[a] => {
                let made = w.ws.create_session(&actors[a], None, None, None);
                if ROLES[a] == Role::Viewer {
                    assert!(matches!(made, Err(WorkspaceError::Forbidden(_))));
                } else {
                    let v = made.expect("create");
                    m.sessions.push((v.session.id, Some((a, HashMap::new()))));
                }
            }
            Op::Share(a, s, t, level) if m.alive[a] && m.alive[t] => {
                let Some(s) = slot(&m, s) else { continue };
                let p = m.permission(a, s);
                let target = ShareTarget::UserId(id_of(&actors[t]));
                let r =
                    w.ws.share_session(&actors[a], &m.sessions[s].0, &target, level);
                if !is_admin_level(p) {
                    check_refusal(p.is_some(), r, "share without admin access");
                    continue;
                }
                let owner = m.sessions[s].1.as_ref().map(|(o, _)| *o);
                if t == a || Some(t) == owner {
                    assert!(matches!(r, Err(WorkspaceError::Invalid { .. })), "{r:?}");
                    continue;
                }
                r.expect("share");
                if let Some((_, shares)) = m.sessions[s].1.as_mut() {
                    shares.insert(t, level);
                }
            }
            Op::Revoke(a, s, t) if m.alive[a] && m.alive[t] => {
                let Some(s) = slot(&m, s) else { continue };
                let p = m.permission(a, s);
                let r =
                    w.ws.revoke_session_share(&actors[a], &m.sessions[s].0, &id_of(&actors[t]));
                let enough = if t == a {
                    p.is_some()
                } else {
                    is_admin_level(p)
                };
                if !enough {
                    check_refusal(p.is_some(), r, "revoke without access");
                    continue;
                }
                let Some((_, shares)) = m.sessions[s].1.as_mut() else {
                    unreachable!("a visible session exists")
                };
                match shares.remove(&t) {
                    Some(_) => r.expect("revoke"),
                    None => assert!(matches!(r, Err(WorkspaceError::NotFound)), "{r:?}"),
                }
            }
            Op::Delete(a, s) if m.alive[a] => {
                let Some(s) = slot(&m, s) else { continue };
                let p = m.permission(a, s);
                let r = w.ws.delete_session(&actors[a], &m.sessions[s].0);
                if matches!(p, Some(SessionPermission::Owner))
                    || (p.is_some() && ROLES[a] == Role::Admin)
                {
                    r.expect("delete");
                    m.sessions[s].1 = None;
                } else {
                    check_refusal(p.is_some(), r, "delete by someone else");
                }
            }
            Op::DeleteUser(u, heir) if m.alive[u] => {
                let heir = heir.filter(|h| *h != u && m.alive[*h]);
                let heir_id = heir.map(|h| id_of(&actors[h]));
                let r = UserRepository::delete(&w.db, &id_of(&actors[u]), heir_id.as_ref());
                if heir.is_some_and(|h| ROLES[h] == Role::Viewer) {
                    assert!(r.is_err(), "a viewer cannot inherit");
                    continue;
                }
                r.expect("delete user");
                m.alive[u] = false;
                for (_, state) in &mut m.sessions {
                    let Some((owner, shares)) = state.as_mut() else {
                        continue;
                    };
                    shares.remove(&u);
                    if *owner == u {
                        match heir {
                            Some(h) => {
                                *owner = h;
                                shares.clear();
                            }
                            None => *state = None,
                        }
                    }
                }
            }
            _ => continue,
        }
        // Every read and every own listing, against the model.
        for (u, actor) in actors.iter().enumerate().filter(|(u, _)| m.alive[*u]) {
            for (s, (id, _)) in m.sessions.iter().enumerate() {
                match (m.permission(u, s), w.ws.get_session(actor, id)) {
                    (None, Err(WorkspaceError::NotFound)) => {}
                    (Some(p), Ok((view, _))) => {
                        assert_eq!(view.permission, p, "{} on {s}", NAMES[u])
                    }
                    (want, got) => panic!("{} on {s}: want {want:?}, got {got:?}", NAMES[u]),
                }
            }
            if ROLES[u] != Role::Viewer {
                let own =
                    w.ws.list_sessions(
                        actor,
                        &ListRequest {
                            limit: Some(100),
                            ..ListRequest::default()
                        },
                    )
                    .expect("list");
                let mut listed: Vec<&str> =
                    own.data.iter().map(|v| v.session.id.as_str()).collect();
                let mut expected: Vec<&str> = m
                    .sessions
                    .iter()
                    .filter(|(_, st)| st.as_ref().is_some_and(|(o, _)| *o == u))
                    .map(|(id, _)| id.as_str())
                    .collect();
                listed.sort_unstable();
                expected.sort_unstable();
                assert_eq!(listed, expected, "{}'s own list", NAMES[u]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_read_follows_the_policy_whatever_the_interleaving(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
