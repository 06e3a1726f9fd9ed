//! Crash safety: the real `offgrid serve` (multi-user, a temporary home, a
//! random loopback port) under a mixed write load (logins, API keys made by
//! users and by the admin, users created and patched, usage records from
//! embeddings when the default models are installed) is killed with SIGKILL
//! at a random moment, again and again. After each kill:
//!
//! - `PRAGMA integrity_check` is `ok` and `PRAGMA foreign_key_check` empty;
//! - the server starts again on the same home;
//! - every write it acknowledged with a 2xx is there: each created user,
//!   each API key and login token still authenticates, each patch is the
//!   last acknowledged value (or the one that was in flight), and usage
//!   counts at least every acknowledged request.
//!
//! `OFFGRID_CRASH_ROUNDS` kills (default 3, the CI run; `cargo xtask
//! crash-test` runs 50). Each round checks its own writes and a sample of
//! older ones; the last round checks everything.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use rand::Rng;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "crash-admin-password-1";
const EMBED: &str = "all-minilm-l6-v2";

fn rounds() -> usize {
    std::env::var("OFFGRID_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// The installed default models, if any (`cargo xtask models`).
fn installed_models() -> Option<PathBuf> {
    let dir = match std::env::var_os("OFFGRID_MODELS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".offgrid-llm/models"),
    };
    dir.join(EMBED).exists().then_some(dir)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One run of the server process; SIGKILLed on drop if still alive.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn spawn(home: &Path, log: &Path) -> Server {
        let port = free_port();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_offgrid"));
        cmd.args(["serve", "--port", &port.to_string()]);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OFFGRID_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .env("OFFGRID_HOME", home)
            .env("OFFGRID_MULTI_USER", "true")
            .env("OFFGRID_BCRYPT_COST", "4")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start offgrid serve");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        }
    }

    /// Waits until `/health` answers (a start that never answers fails the
    /// test with the server's log).
    fn wait_healthy(&mut self, client: &Client) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited with {status}:\n{}", self.log_tail());
            }
            let ok = client
                .get(format!("{}/health", self.base))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the server did not start:\n{}", self.log_tail());
    }

    fn kill(&mut self) {
        // std's kill is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_end(&mut bytes);
        }
        let start = bytes.len().saturating_sub(4000);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A display name patch: what was last acknowledged, and what was sent
/// without an answer (it may or may not have been committed).
#[derive(Default, Clone)]
struct PatchState {
    acked: Option<String>,
    in_flight: Option<String>,
}

/// Every write the server acknowledged with a 2xx, by round.
#[derive(Default)]
struct Ledger {
    /// (round, user id, username).
    users: Vec<(usize, String, String)>,
    /// (round, API key).
    keys: Vec<(usize, String)>,
    /// (round, login token).
    tokens: Vec<(usize, String)>,
    /// Display names of the patched user.
    patch: PatchState,
    /// Acknowledged embeddings requests of the usage user.
    embeddings: i64,
}

/// Accounts made once, before the first kill.
struct Fixture {
    admin_token: String,
    /// Logs in and makes its own keys; never changed.
    alice: String,
    /// Gets keys from the admin; never changed.
    bob_id: String,
    /// Patched, over and over.
    carol_id: String,
    /// Carol's display name before any patch.
    carol_initial: Option<String>,
    /// Its API key runs embeddings (usage records).
    dave_key: String,
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn send(
    client: &Client,
    method: &str,
    url: String,
    auth: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut rb = client.request(method, url);
    if let Some(a) = auth {
        rb = rb.bearer_auth(a);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let res = rb.send().map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn must(result: Result<(u16, Value), String>, expect: u16, what: &str) -> Value {
    match result {
        Ok((s, v)) if s == expect => v,
        other => panic!("{what}: {other:?}"),
    }
}

fn password(name: &str) -> String {
    format!("{name}-crash-password-1")
}

fn create_user(client: &Client, base: &str, admin: &str, name: &str) -> (String, String) {
    let v = must(
        send(
            client,
            "POST",
            format!("{base}/v1/users"),
            Some(admin),
            Some(json!({"username": name, "password": password(name), "role": "user"})),
        ),
        201,
        &format!("create {name}"),
    );
    (
        v["user"]["id"].as_str().expect("user id").to_owned(),
        v["api_key"]["key"].as_str().expect("key").to_owned(),
    )
}

fn set_up(client: &Client, base: &str) -> Fixture {
    must(
        send(
            client,
            "POST",
            format!("{base}/v1/auth/setup"),
            None,
            Some(json!({"username": "root", "password": ADMIN_PASSWORD})),
        ),
        201,
        "setup",
    );
    let admin_token = login(client, base, "root", ADMIN_PASSWORD).expect("admin login");
    create_user(client, base, &admin_token, "alice");
    let alice = login(client, base, "alice", &password("alice")).expect("alice login");
    let (bob_id, _) = create_user(client, base, &admin_token, "bob");
    let (carol_id, _) = create_user(client, base, &admin_token, "carol");
    let carol = must(
        send(
            client,
            "GET",
            format!("{base}/v1/users/{carol_id}"),
            Some(&admin_token),
            None,
        ),
        200,
        "carol",
    );
    let carol_initial = carol["display_name"].as_str().map(str::to_owned);
    let (_, dave_key) = create_user(client, base, &admin_token, "dave");
    Fixture {
        admin_token,
        alice,
        bob_id,
        carol_id,
        carol_initial,
        dave_key,
    }
}

fn login(client: &Client, base: &str, user: &str, pass: &str) -> Option<String> {
    match send(
        client,
        "POST",
        format!("{base}/v1/auth/login"),
        None,
        Some(json!({"username": user, "password": pass})),
    ) {
        Ok((200, v)) => v["token"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// One kind of write, done in a loop by its own thread; `Err` when the
/// server no longer answers.
type Worker = Box<dyn FnMut(&Client) -> Result<(), String> + Send>;

/// Runs the mixed write load until the server stops answering; every
/// acknowledged write goes into the ledger.
fn load(
    base: &str,
    round: usize,
    f: &Fixture,
    ledger: &Arc<Mutex<Ledger>>,
    with_models: bool,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let serial = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<Worker> = Vec::new();

    // New users (each with a first API key).
    {
        let (base, admin, ledger, serial) = (
            base.to_owned(),
            f.admin_token.clone(),
            ledger.clone(),
            serial.clone(),
        );
        workers.push(Box::new(move |c| {
            let name = format!("u{round}x{}", serial.fetch_add(1, Ordering::Relaxed));
            let (s, v) = send(
                c,
                "POST",
                format!("{base}/v1/users"),
                Some(&admin),
                Some(json!({"username": name, "password": password(&name)})),
            )?;
            if s == 201 {
                let mut l = ledger.lock().expect("ledger");
                let id = v["user"]["id"].as_str().unwrap_or_default().to_owned();
                l.users.push((round, id, name));
                if let Some(k) = v["api_key"]["key"].as_str() {
                    l.keys.push((round, k.to_owned()));
                }
            }
            Ok(())
        }));
    }
    // Logins.
    {
        let (base, ledger) = (base.to_owned(), ledger.clone());
        workers.push(Box::new(move |c| {
            let (s, v) = send(
                c,
                "POST",
                format!("{base}/v1/auth/login"),
                None,
                Some(json!({"username": "alice", "password": password("alice")})),
            )?;
            if let (200, Some(t)) = (s, v["token"].as_str()) {
                ledger
                    .lock()
                    .expect("ledger")
                    .tokens
                    .push((round, t.to_owned()));
            }
            Ok(())
        }));
    }
    // API keys: alice's own, and bob's made by the admin.
    {
        let (base, alice, admin, bob, ledger, serial) = (
            base.to_owned(),
            f.alice.clone(),
            f.admin_token.clone(),
            f.bob_id.clone(),
            ledger.clone(),
            serial.clone(),
        );
        workers.push(Box::new(move |c| {
            let n = serial.fetch_add(1, Ordering::Relaxed);
            let (url, auth) = if n % 2 == 0 {
                (format!("{base}/v1/users/me/api-keys"), &alice)
            } else {
                (format!("{base}/v1/users/{bob}/api-keys"), &admin)
            };
            let (s, v) = send(
                c,
                "POST",
                url,
                Some(auth),
                Some(json!({"name": format!("k{n}")})),
            )?;
            if let (201, Some(k)) = (s, v["key"].as_str()) {
                ledger
                    .lock()
                    .expect("ledger")
                    .keys
                    .push((round, k.to_owned()));
            }
            Ok(())
        }));
    }
    // Patches of carol's display name, one at a time.
    {
        let (base, admin, carol, ledger, serial) = (
            base.to_owned(),
            f.admin_token.clone(),
            f.carol_id.clone(),
            ledger.clone(),
            serial.clone(),
        );
        workers.push(Box::new(move |c| {
            let name = format!("carol-{round}-{}", serial.fetch_add(1, Ordering::Relaxed));
            ledger.lock().expect("ledger").patch.in_flight = Some(name.clone());
            let (s, _) = send(
                c,
                "PATCH",
                format!("{base}/v1/users/{carol}"),
                Some(&admin),
                Some(json!({"display_name": name})),
            )?;
            if s == 200 {
                let mut l = ledger.lock().expect("ledger");
                l.patch = PatchState {
                    acked: Some(name),
                    in_flight: None,
                };
            }
            Ok(())
        }));
    }
    // Usage records, when an embedding model is installed.
    if with_models {
        let (base, key, ledger) = (base.to_owned(), f.dave_key.clone(), ledger.clone());
        workers.push(Box::new(move |c| {
            let (s, _) = send(
                c,
                "POST",
                format!("{base}/v1/embeddings"),
                Some(&key),
                Some(json!({"model": EMBED, "input": "crash safety"})),
            )?;
            if s == 200 {
                ledger.lock().expect("ledger").embeddings += 1;
            }
            Ok(())
        }));
    }

    workers
        .into_iter()
        .map(|mut work| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let c = client();
                // A transport error means the server is gone: stop.
                while !stop.load(Ordering::Relaxed) && work(&c).is_ok() {}
            })
        })
        .collect()
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// `PRAGMA integrity_check` and `foreign_key_check` on the file, opened
/// the way any SQLite client would (this also recovers the WAL).
fn check_database(db: &Path) {
    let url = db.to_str().expect("utf-8 path");
    let mut conn = SqliteConnection::establish(url).expect("open the database");
    let rows: Vec<Line> =
        diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
            .load(&mut conn)
            .expect("integrity_check");
    let lines: Vec<String> = rows.into_iter().map(|r| r.line).collect();
    assert_eq!(lines, ["ok"], "PRAGMA integrity_check");
    let bad: Vec<Line> = diesel::sql_query(
        "SELECT \"table\" || ' row ' || rowid AS line FROM pragma_foreign_key_check",
    )
    .load(&mut conn)
    .expect("foreign_key_check");
    assert!(
        bad.is_empty(),
        "foreign key violations: {:?}",
        bad.iter().map(|l| &l.line).collect::<Vec<_>>()
    );
}

/// Checks that acknowledged writes survived; `all` checks every one, else
/// this round's and a sample of older ones.
fn verify(client: &Client, base: &str, f: &Fixture, ledger: &mut Ledger, round: usize, all: bool) {
    let mut rng = rand::thread_rng();
    let mut pick = |r: usize| all || r == round || rng.gen_ratio(1, 20);
    let mut checked = 0usize;
    for (r, id, name) in &ledger.users {
        if pick(*r) {
            let v = must(
                send(
                    client,
                    "GET",
                    format!("{base}/v1/users/{id}"),
                    Some(&f.admin_token),
                    None,
                ),
                200,
                &format!("user {name} (created in round {r}) after the kill"),
            );
            assert_eq!(v["username"], name.as_str());
            checked += 1;
        }
    }
    for (r, key) in &ledger.keys {
        if pick(*r) {
            must(
                send(client, "GET", format!("{base}/v1/auth/me"), Some(key), None),
                200,
                &format!("API key made in round {r} after the kill"),
            );
            checked += 1;
        }
    }
    for (r, token) in &ledger.tokens {
        if pick(*r) {
            must(
                send(
                    client,
                    "GET",
                    format!("{base}/v1/auth/me"),
                    Some(token),
                    None,
                ),
                200,
                &format!("login token from round {r} after the kill"),
            );
            checked += 1;
        }
    }
    let carol = must(
        send(
            client,
            "GET",
            format!("{base}/v1/users/{}", f.carol_id),
            Some(&f.admin_token),
            None,
        ),
        200,
        "carol",
    );
    let shown = carol["display_name"].as_str().map(str::to_owned);
    let settled = ledger.patch.acked.clone().or(f.carol_initial.clone());
    let in_flight = ledger.patch.in_flight.clone();
    assert!(
        shown == settled || (in_flight.is_some() && shown == in_flight),
        "carol's display name is {shown:?}; acknowledged {settled:?}, in flight {in_flight:?}"
    );
    // Whichever it is now is what later rounds build on.
    ledger.patch = PatchState {
        acked: shown,
        in_flight: None,
    };
    if ledger.embeddings > 0 {
        let v = must(
            send(
                client,
                "GET",
                format!("{base}/v1/usage"),
                Some(&f.dave_key),
                None,
            ),
            200,
            "usage",
        );
        let recorded: i64 = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["model"] == EMBED)
            .filter_map(|t| t["requests"].as_i64())
            .sum();
        assert!(
            recorded >= ledger.embeddings,
            "{} embeddings were acknowledged but {recorded} usage records survived",
            ledger.embeddings
        );
    }
    eprintln!("crash round {round}: {checked} acknowledged writes checked");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let home = tempfile::tempdir().expect("home");
    let logs = tempfile::tempdir().expect("logs");
    let log = logs.path().join("server.log");
    let models = installed_models();
    if let Some(dir) = &models {
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir, home.path().join("models")).expect("link models");
    } else {
        eprintln!("crash test: no default models installed; usage records are not exercised");
    }
    let db = home.path().join("offgrid.db");
    let client = client();
    let mut rng = rand::thread_rng();

    let mut server = Server::spawn(home.path(), &log);
    server.wait_healthy(&client);
    let fixture = set_up(&client, &server.base);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let total = rounds();

    for round in 0..total {
        // Mostly under load; now and then during start-up itself.
        let during_start = rng.gen_ratio(1, 10);
        if during_start {
            server.kill();
            server = Server::spawn(home.path(), &log);
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        } else {
            let stop = Arc::new(AtomicBool::new(false));
            let workers = load(
                &server.base,
                round,
                &fixture,
                &ledger,
                models.is_some(),
                &stop,
            );
            std::thread::sleep(Duration::from_millis(rng.gen_range(50..1500)));
            server.kill();
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().expect("load worker");
            }
        }
        server.kill();

        check_database(&db);
        server = Server::spawn(home.path(), &log);
        server.wait_healthy(&client);
        let mut l = ledger.lock().expect("ledger");
        eprintln!(
            "crash round {round}: killed {}; {} users, {} keys, {} tokens, {} embeddings acknowledged so far",
            if during_start {
                "during start-up"
            } else {
                "under load"
            },
            l.users.len(),
            l.keys.len(),
            l.tokens.len(),
            l.embeddings
        );
        verify(
            &client,
            &server.base,
            &fixture,
            &mut l,
            round,
            round + 1 == total,
        );
    }
    let l = ledger.lock().expect("ledger");
    assert!(
        total == 0 || l.users.len() + l.keys.len() + l.tokens.len() > 0,
        "no write was ever acknowledged: the load did not run"
    );
}
