//! The workspace half of `cargo xtask bench workspace`: a real SQLite file
//! with 1,000 users × 100 chat sessions (and shares among them), then
//! listing one user's sessions through `Workspace::list_sessions` (the
//! repository's owner/share/admin filter included) against the same page
//! read by a plain indexed query without any filter, in one run. Prints
//! one JSON object.
//!
//! ```text
//! bench_workspace [--users 1000] [--sessions 100] [--samples 2000] [--dir DIR]
//! ```

use std::time::{Duration, Instant};

use diesel::prelude::*;
use offgrid_domain::principal::Credential;
use offgrid_domain::repo::{ChatSessionRepository, GrantRepository, UserRepository};
use offgrid_domain::user::NewUser;
use offgrid_domain::workspace::{GrantLevel, NewChatSession, ResourceKind};
use offgrid_domain::{Principal, Role, SessionId, Timestamp, UserId};
use offgrid_storage::Database;
use offgrid_workspace::sessions::ListRequest;
use offgrid_workspace::{Actor, Workspace, WorkspaceConfig};

struct Args {
    users: usize,
    sessions: usize,
    samples: usize,
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        users: 1000,
        sessions: 100,
        samples: 2000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value()?.parse().map_err(|e| format!("--users: {e}"))?,
            "--sessions" => {
                a.sessions = value()?.parse().map_err(|e| format!("--sessions: {e}"))?;
            }
            "--samples" => a.samples = value()?.parse().map_err(|e| format!("--samples: {e}"))?,
            "--dir" => a.dir = Some(value()?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// A tiny deterministic generator (xorshift), so every run lists the same
/// users.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(mut times: Vec<Duration>) -> serde_json::Value {
    times.sort_unstable();
    serde_json::json!({
        "p50_ms": percentile(&times, 0.5),
        "p99_ms": percentile(&times, 0.99),
    })
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let db = Database::open(&dir.join("offgrid.db")).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;

    // The data: users, their sessions, and a few shares each.
    let started = Instant::now();
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let u = UserRepository::create(
            &db,
            NewUser {
                username: format!("user{i:05}"),
                email: None,
                display_name: None,
                role: Role::User,
                password_hash: "x".into(),
            },
            Timestamp(1_800_000_000),
        )
        .map_err(|e| e.to_string())?;
        users.push(u.id);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (i, owner) in users.iter().enumerate() {
        for j in 0..args.sessions {
            let s = ChatSessionRepository::create(
                &db,
                NewChatSession {
                    owner: owner.clone(),
                    title: format!("Session {j} of user {i}"),
                    model: None,
                    preset_id: None,
                },
                Timestamp(1_800_000_000 + (i * args.sessions + j) as i64),
            )
            .map_err(|e| e.to_string())?;
            if j < 3 {
                let to = &users[rng.below(users.len())];
                if to != owner {
                    db.grant(
                        ResourceKind::Session,
                        s.id.as_str(),
                        to,
                        GrantLevel::Read,
                        Timestamp(1_800_000_000),
                    )
                    .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    let populate = started.elapsed();

    let ws = Workspace::new(&db.repositories(), WorkspaceConfig::default());
    let actor = |id: &UserId| {
        Actor::new(
            Principal {
                user_id: Some(id.clone()),
                role: Role::User,
                credential: Credential::Session {
                    session_id: SessionId::generate(),
                    from_cookie: false,
                },
            },
            None,
        )
    };
    let request = ListRequest {
        limit: Some(50),
        ..ListRequest::default()
    };
    // The same page without any access filter: the owner index alone.
    let mut raw =
        diesel::sqlite::SqliteConnection::establish(dir.join("offgrid.db").to_str().ok_or("path")?)
            .map_err(|e| e.to_string())?;
    let plain = |conn: &mut diesel::sqlite::SqliteConnection, owner: &UserId| {
        diesel::sql_query(
            "SELECT id FROM chat_sessions WHERE owner_id = ? \
             ORDER BY updated_at DESC, id DESC LIMIT 50",
        )
        .bind::<diesel::sql_types::Text, _>(owner.as_str())
        .execute(conn)
    };
    // Warm both paths, then interleave them so drift hits both alike.
    for owner in users.iter().take(50) {
        ws.list_sessions(&actor(owner), &request)
            .map_err(|e| e.to_string())?;
        plain(&mut raw, owner).map_err(|e| e.to_string())?;
    }
    let (mut filtered, mut unfiltered) = (Vec::new(), Vec::new());
    for _ in 0..args.samples {
        let owner = &users[rng.below(users.len())];
        let a = actor(owner);
        let t = Instant::now();
        let page = ws.list_sessions(&a, &request).map_err(|e| e.to_string())?;
        filtered.push(t.elapsed());
        if page.data.len() != args.sessions.min(50) {
            return Err(format!("listed {} sessions", page.data.len()));
        }
        let t = Instant::now();
        plain(&mut raw, owner).map_err(|e| e.to_string())?;
        unfiltered.push(t.elapsed());
    }
    let f = summary(filtered);
    let u = summary(unfiltered);
    let ratio = f["p50_ms"].as_f64().unwrap_or(0.0) / u["p50_ms"].as_f64().unwrap_or(1.0).max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "users": args.users,
            "sessions_per_user": args.sessions,
            "populate_s": populate.as_secs_f64(),
            "samples": args.samples,
            "list_own_sessions": f,
            "plain_query_same_page": u,
            "filter_overhead_p50_ratio": ratio,
        })
    );
    Ok(())
}
