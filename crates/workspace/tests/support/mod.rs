//! What the workspace's integration tests share: a real SQLite file in a
//! temporary directory, users as actors, and result checks.

#![allow(dead_code)]

use offgrid_domain::principal::Credential;
use offgrid_domain::repo::UserRepository;
use offgrid_domain::user::NewUser;
use offgrid_domain::workspace::{MessageRole, NewChatMessage};
use offgrid_domain::{Principal, Role, SessionId, Timestamp, UserId};
use offgrid_storage::Database;
use offgrid_workspace::{Actor, Workspace, WorkspaceConfig, WorkspaceError};

pub struct World {
    pub ws: Workspace,
    pub db: Database,
    pub _dir: tempfile::TempDir,
}

pub fn world(config: WorkspaceConfig) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&dir.path().join("offgrid.db")).expect("open");
    db.migrate().expect("migrate");
    let ws = Workspace::new(&db.repositories(), config);
    World { ws, db, _dir: dir }
}

impl World {
    pub fn user(&self, name: &str, role: Role) -> Actor {
        let user = UserRepository::create(
            &self.db,
            NewUser {
                username: name.to_owned(),
                email: None,
                display_name: None,
                role,
                password_hash: "hash".to_owned(),
            },
            Timestamp(1_800_000_000),
        )
        .expect("create user");
        actor(Some(user.id), role)
    }
}

pub fn actor(user_id: Option<UserId>, role: Role) -> Actor {
    Actor::new(
        Principal {
            user_id,
            role,
            credential: Credential::Session {
                session_id: SessionId::generate(),
                from_cookie: false,
            },
        },
        Some("127.0.0.1".to_owned()),
    )
}

pub fn id_of(a: &Actor) -> UserId {
    a.principal.user_id.clone().expect("a user")
}

pub fn say(text: &str) -> Vec<NewChatMessage> {
    vec![NewChatMessage {
        role: MessageRole::User,
        content: text.to_owned(),
        model: None,
        usage: None,
        citations: None,
        interrupted: false,
    }]
}

pub fn is_not_found<T: std::fmt::Debug>(r: Result<T, WorkspaceError>) -> bool {
    matches!(r, Err(WorkspaceError::NotFound))
}

pub fn is_forbidden<T: std::fmt::Debug>(r: Result<T, WorkspaceError>) -> bool {
    matches!(r, Err(WorkspaceError::Forbidden(_)))
}
