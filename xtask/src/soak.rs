//! `cargo xtask soak [--secs N] [--debug]`: 50 concurrent clients against
//! the real server with the real default models, driven by goose (a load
//! generator after Locust: weighted scenarios of transactions per simulated
//! user, per-request and per-transaction timings, status-code counts).
//!
//! The mix: chat users (streamed and plain chat completions, text
//! completions, embeddings, model listing, usage, logins), admins (users
//! created, patched and given API keys, user and audit listings) and
//! misbehaving clients (malformed JSON, wrong types, unknown models and
//! routes, another role's endpoints). Afterwards:
//!
//! - no 5xx and no transport error anywhere; every streamed answer ended
//!   with `[DONE]`; every bad request was refused with a 4xx;
//! - no lost write: every user and API key the server acknowledged exists
//!   and works, every patch is the last acknowledged one;
//! - the server's RSS at the end is within 10% of its RSS after a warm-up
//!   (a burst that loads both models and fills the engine and the
//!   embedding slots, then at least 60 s of the mix, a quarter of the run
//!   when longer) that precedes the measured N seconds; the report has the
//!   RSS timeline;
//! - p50/p99 per endpoint (whole transaction, body included) are printed as
//!   a Markdown table for docs/PERFORMANCE.md.
//!
//! Release build by default; `--debug` uses the test build (what
//! `cargo xtask test` runs for 60 s, so CI needs no release build).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde_json::{Value, json};

use crate::bench::{TempHome, curl, free_port, target_dir};
use crate::{cargo, run};

const USERS: usize = 50;
const ADMIN_PASSWORD: &str = "soak-admin-password-1";
const CHAT: &str = "smollm2-135m-instruct";
const EMBED: &str = "all-minilm-l6-v2";
/// Tokens per completion: enough to stream, few enough that the chat users
/// on two cores get answers within the request timeout.
const MAX_TOKENS: u32 = 8;
/// Shortest warm-up before the measured run.
const WARM_UP_SECS: u64 = 60;
/// Client timeout of one request, seconds.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How often the server's RSS is sampled.
const RSS_EVERY: Duration = Duration::from_secs(5);
/// Attempts of one login refused with 429 before the soak calls it broken.
const LOGIN_TRIES: usize = 20;

fn password(name: &str) -> String {
    format!("{name}-soak-password-1")
}

/// Writes the server acknowledged, checked after the run.
#[derive(Default)]
struct Ledger {
    /// (id, username) of created users.
    users: Vec<(String, String)>,
    /// API keys made, with their owner's id.
    keys: Vec<(String, String)>,
    /// Per patched user: the last acknowledged display name and one sent
    /// without an answer yet.
    patches: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// State shared by every simulated user.
struct Shared {
    ledger: Mutex<Ledger>,
    serial: AtomicUsize,
    /// Streamed answers without `[DONE]`, bad requests not refused with a
    /// 4xx, 2xx answers whose body was not what the endpoint promises.
    broken: Mutex<Vec<String>>,
    /// Whole-request times (body included) in microseconds, by request.
    timings: Mutex<BTreeMap<String, Vec<u64>>>,
    /// Logins refused with 429 (too many in flight) and tried again.
    login_retries: AtomicUsize,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        ledger: Mutex::new(Ledger::default()),
        serial: AtomicUsize::new(0),
        login_retries: AtomicUsize::new(0),
        broken: Mutex::new(Vec::new()),
        timings: Mutex::new(BTreeMap::new()),
    })
}

fn broken(what: String) {
    let mut b = shared().broken.lock().unwrap_or_else(|p| p.into_inner());
    if b.len() < 50 {
        b.push(what);
    }
}

/// A simulated user's login token.
#[derive(Clone)]
struct Session {
    token: String,
    /// Users this admin created (it patches only its own).
    created: Vec<String>,
}

/// One request: JSON (or raw) body, bearer credential; returns the status
/// and the whole body (streamed bodies included), with the request metric
/// so the caller can mark it.
async fn call(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    body: Option<Vec<u8>>,
    auth: bool,
) -> Result<(u16, String, GooseRequestMetric), Box<TransactionError>> {
    let (status, text, metric, _) =
        call_with_retry_after(user, method, path, name, body, auth).await?;
    Ok((status, text, metric))
}

/// [`call`], also giving the `Retry-After` seconds of a 429 or 503.
async fn call_with_retry_after(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    body: Option<Vec<u8>>,
    auth: bool,
) -> Result<(u16, String, GooseRequestMetric, Option<u64>), Box<TransactionError>> {
    let mut rb = user.get_request_builder(&method, path)?;
    if auth && let Some(s) = user.get_session_data::<Session>() {
        rb = rb.bearer_auth(&s.token);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let goose = user.request(request).await?;
    let metric = goose.request;
    let answer = match goose.response {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            match r.text().await {
                Ok(text) => (status, text, metric, retry_after),
                Err(e) => {
                    broken(format!("{name}: body cut short: {e}"));
                    (status, String::new(), metric, retry_after)
                }
            }
        }
        Err(_) => (0, String::new(), metric, None),
    };
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    shared()
        .timings
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name.to_owned())
        .or_default()
        .push(us);
    Ok(answer)
}

/// The `p` quantile (0–1) of sorted times.
fn quantile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn json_body(v: Value) -> Option<Vec<u8>> {
    serde_json::to_vec(&v).ok()
}

/// Logs in as a real client does: a 429 (more logins in flight from this
/// address than the server verifies at once; all soak users share
/// 127.0.0.1) is waited out for its `Retry-After` and tried again.
async fn login_as(user: &mut GooseUser, name: &str, pass: &str) -> TransactionResult {
    for _ in 0..LOGIN_TRIES {
        let body = json_body(json!({"username": name, "password": pass}));
        let (status, text, mut metric, retry_after) = call_with_retry_after(
            user,
            GooseMethod::Post,
            "/v1/auth/login",
            "/v1/auth/login",
            body,
            false,
        )
        .await?;
        if status == 429 {
            shared().login_retries.fetch_add(1, Ordering::Relaxed);
            // The refusal is the server keeping its promise, not a failure.
            user.set_success(&mut metric)?;
            let wait = retry_after.unwrap_or(1).clamp(1, 30);
            // Spread the retries so the same users do not collide again.
            let jitter = shared().serial.fetch_add(1, Ordering::Relaxed) % 500;
            tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(jitter as u64))
                .await;
            continue;
        }
        let token = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_owned));
        match token {
            Some(token) if status == 200 => {
                let created = user
                    .get_session_data::<Session>()
                    .map(|s| s.created.clone())
                    .unwrap_or_default();
                user.set_session_data(Session { token, created });
            }
            _ => broken(format!("login {name}: {status} {text}")),
        }
        return Ok(());
    }
    broken(format!("login {name}: still 429 after {LOGIN_TRIES} tries"));
    Ok(())
}

fn account(user: &GooseUser) -> String {
    format!("soak-{}", user.weighted_users_index)
}

/// A client that drops a pooled connection after 2 s idle, before the
/// server's keep-alive (actix's 5 s) closes it. With goose's default (90 s)
/// a user pausing 5–8 s sends its next request on a connection the server
/// is closing at that moment, and the request fails before it is sent: a
/// race every HTTP/1.1 client has to avoid, not a server fault.
async fn polite_client(user: &mut GooseUser) -> TransactionResult {
    let builder = goose_reqwest::Client::builder()
        .user_agent("offgrid-soak")
        .gzip(true)
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .pool_idle_timeout(Duration::from_secs(2));
    user.set_client_builder(builder).await.map_err(Box::new)
}

async fn chat_login(user: &mut GooseUser) -> TransactionResult {
    polite_client(user).await?;
    let name = account(user);
    login_as(user, &name, &password(&name)).await
}

async fn admin_login(user: &mut GooseUser) -> TransactionResult {
    polite_client(user).await?;
    login_as(user, "root", ADMIN_PASSWORD).await
}

fn question() -> String {
    let topics = [
        "a CPU",
        "the moon",
        "a river",
        "bread",
        "a compiler",
        "rain",
    ];
    let i = shared().serial.fetch_add(1, Ordering::Relaxed);
    format!("Say one sentence about {}.", topics[i % topics.len()])
}

async fn chat_stream(user: &mut GooseUser) -> TransactionResult {
    let body = json_body(json!({
        "model": CHAT, "stream": true, "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": question()}],
    }));
    let (status, text, _) = call(
        user,
        GooseMethod::Post,
        "/v1/chat/completions",
        "/v1/chat/completions (stream)",
        body,
        true,
    )
    .await?;
    if status == 200 && !text.trim_end().ends_with("data: [DONE]") {
        broken(format!("stream without [DONE]: {text}"));
    }
    Ok(())
}

async fn chat_plain(user: &mut GooseUser) -> TransactionResult {
    let body = json_body(json!({
        "model": CHAT, "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": question()}],
    }));
    let (status, text, _) = call(
        user,
        GooseMethod::Post,
        "/v1/chat/completions",
        "/v1/chat/completions",
        body,
        true,
    )
    .await?;
    let ok = serde_json::from_str::<Value>(&text)
        .is_ok_and(|v| v["choices"][0]["message"]["content"].is_string());
    if status == 200 && !ok {
        broken(format!("chat answer without content: {text}"));
    }
    Ok(())
}

async fn completion(user: &mut GooseUser) -> TransactionResult {
    let body = json_body(json!({"model": CHAT, "prompt": question(), "max_tokens": MAX_TOKENS}));
    call(
        user,
        GooseMethod::Post,
        "/v1/completions",
        "/v1/completions",
        body,
        true,
    )
    .await?;
    Ok(())
}

async fn embeddings(user: &mut GooseUser) -> TransactionResult {
    let n = 1 + shared().serial.fetch_add(1, Ordering::Relaxed) % 4;
    let input: Vec<String> = (0..n).map(|_| question()).collect();
    let body = json_body(json!({"model": EMBED, "input": input}));
    let (status, text, _) = call(
        user,
        GooseMethod::Post,
        "/v1/embeddings",
        "/v1/embeddings",
        body,
        true,
    )
    .await?;
    let got = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["data"].as_array().map(Vec::len));
    if status == 200 && got != Some(n) {
        broken(format!("{n} inputs gave {got:?} embeddings"));
    }
    Ok(())
}

async fn get(user: &mut GooseUser, path: &str) -> TransactionResult {
    call(
        user,
        GooseMethod::Get,
        path,
        &format!("GET {path}"),
        None,
        true,
    )
    .await?;
    Ok(())
}

async fn models(user: &mut GooseUser) -> TransactionResult {
    get(user, "/v1/models").await
}

async fn usage(user: &mut GooseUser) -> TransactionResult {
    get(user, "/v1/usage").await
}

async fn me(user: &mut GooseUser) -> TransactionResult {
    get(user, "/v1/users/me").await
}

async fn list_users(user: &mut GooseUser) -> TransactionResult {
    get(user, "/v1/users?limit=20").await
}

async fn audit(user: &mut GooseUser) -> TransactionResult {
    get(user, "/v1/audit?limit=20").await
}

async fn create_user(user: &mut GooseUser) -> TransactionResult {
    let name = format!(
        "made-{}-{}",
        user.weighted_users_index,
        shared().serial.fetch_add(1, Ordering::Relaxed)
    );
    let body = json_body(json!({"username": name, "password": password(&name)}));
    let (status, text, _) = call(
        user,
        GooseMethod::Post,
        "/v1/users",
        "/v1/users",
        body,
        true,
    )
    .await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let (201, Some(id)) = (status, v["user"]["id"].as_str()) {
        let mut l = shared().ledger.lock().unwrap_or_else(|p| p.into_inner());
        l.users.push((id.to_owned(), name));
        if let Some(k) = v["api_key"]["key"].as_str() {
            l.keys.push((k.to_owned(), id.to_owned()));
        }
        drop(l);
        if let Some(s) = user.get_session_data_mut::<Session>() {
            s.created.push(id.to_owned());
        }
    }
    Ok(())
}

/// A user this admin created, if any.
fn one_of_mine(user: &GooseUser) -> Option<String> {
    let s = user.get_session_data::<Session>()?;
    let i = shared().serial.fetch_add(1, Ordering::Relaxed);
    s.created.get(i % s.created.len().max(1)).cloned()
}

async fn patch_user(user: &mut GooseUser) -> TransactionResult {
    let Some(id) = one_of_mine(user) else {
        return create_user(user).await;
    };
    let name = format!("Name {}", shared().serial.fetch_add(1, Ordering::Relaxed));
    shared()
        .ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .patches
        .entry(id.clone())
        .or_default()
        .1 = Some(name.clone());
    let path = format!("/v1/users/{id}");
    let body = json_body(json!({"display_name": name}));
    let (status, _, _) = call(
        user,
        GooseMethod::Patch,
        &path,
        "/v1/users/{id}",
        body,
        true,
    )
    .await?;
    if status == 200 {
        let mut l = shared().ledger.lock().unwrap_or_else(|p| p.into_inner());
        l.patches.insert(id, (Some(name), None));
    }
    Ok(())
}

async fn create_key(user: &mut GooseUser) -> TransactionResult {
    let Some(id) = one_of_mine(user) else {
        return create_user(user).await;
    };
    let path = format!("/v1/users/{id}/api-keys");
    let body = json_body(json!({"name": "soak"}));
    let (status, text, _) = call(
        user,
        GooseMethod::Post,
        &path,
        "/v1/users/{id}/api-keys",
        body,
        true,
    )
    .await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let (201, Some(k)) = (status, v["key"].as_str()) {
        let mut l = shared().ledger.lock().unwrap_or_else(|p| p.into_inner());
        l.keys.push((k.to_owned(), id));
    }
    Ok(())
}

/// Requests a well-behaved server refuses with a 4xx: (method, path, body,
/// with credentials).
fn bad_requests() -> Vec<(GooseMethod, &'static str, Option<Vec<u8>>, bool)> {
    let chat = "/v1/chat/completions";
    vec![
        (GooseMethod::Post, chat, Some(b"{\"model\":".to_vec()), true),
        (
            GooseMethod::Post,
            chat,
            json_body(json!({"model": CHAT, "messages": "hi"})),
            true,
        ),
        (
            GooseMethod::Post,
            chat,
            json_body(json!({"model": "no-such-model", "messages": []})),
            true,
        ),
        (
            GooseMethod::Post,
            chat,
            json_body(
                json!({"model": CHAT, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
            ),
            true,
        ),
        (
            GooseMethod::Post,
            "/v1/embeddings",
            json_body(json!({"model": EMBED, "input": []})),
            true,
        ),
        (
            GooseMethod::Post,
            "/v1/embeddings",
            json_body(json!({"model": CHAT, "input": "a chat model cannot embed"})),
            true,
        ),
        (GooseMethod::Get, "/v1/no-such-route", None, true),
        (GooseMethod::Get, "/v1/users", None, true), // not an admin: 403
        (GooseMethod::Get, "/v1/audit", None, false), // no credentials
        (
            GooseMethod::Post,
            "/v1/users",
            json_body(json!({"username": "x", "password": "short"})),
            true,
        ),
        (
            GooseMethod::Post,
            "/v1/users/me/api-keys",
            json_body(json!({"name": "k", "expires_in_days": 0})),
            true,
        ),
    ]
}

async fn bad_request(user: &mut GooseUser) -> TransactionResult {
    let all = bad_requests();
    let i = shared().serial.fetch_add(1, Ordering::Relaxed) % all.len();
    let (method, path, body, auth) =
        all.into_iter()
            .nth(i)
            .unwrap_or((GooseMethod::Get, "/v1/no-such-route", None, false));
    let name = format!("bad request #{i}");
    let (status, text, mut metric) = call(user, method, path, &name, body, auth).await?;
    if (400..500).contains(&status) {
        let shaped = serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v["error"]["message"].is_string() && v["error"]["code"].is_string());
        if !shaped {
            broken(format!("{name}: {status} without the error shape: {text}"));
        }
        // Refused, as it should be: a success for the load test.
        return user.set_success(&mut metric);
    }
    broken(format!("{name} ({path}) answered {status}: {text}"));
    Ok(())
}

/// The server process under test.
struct Server {
    child: Child,
    base: String,
    _home: TempHome,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn models_dir() -> Result<PathBuf, String> {
    let dir = crate::models::home_dir()?.join("models");
    for id in [CHAT, EMBED] {
        if !dir.join(id).exists() {
            return Err(format!(
                "{} has no {id}: run `cargo xtask models`",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

fn start(bin: &std::path::Path) -> Result<Server, String> {
    let home = TempHome::new("soak")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(models_dir()?, home.0.join("models"))
        .map_err(|e| format!("link models: {e}"))?;
    let port = free_port()?;
    let mut cmd = Command::new(bin.join("offgrid"));
    cmd.args(["serve", "--port", &port.to_string()]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OFFGRID_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .env("OFFGRID_HOME", &home.0)
        .env("OFFGRID_MULTI_USER", "true")
        // Logins stay in the mix without bcrypt at cost 12 (about 0.25 s
        // of a core each) crowding out everything else on two cores.
        .env("OFFGRID_BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start offgrid: {e}"))?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _home: home,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if curl(&[&format!("{}/health", server.base)]).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the server did not start".to_owned())
}

/// `curl` returning the status code and body.
fn http(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut args: Vec<String> = vec![
        "-X".into(),
        method.into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    if let Some(a) = auth {
        args.extend(["-H".into(), format!("authorization: Bearer {a}")]);
    }
    if let Some(b) = body {
        args.extend([
            "-H".into(),
            "content-type: application/json".into(),
            "-d".into(),
            b.to_string(),
        ]);
    }
    args.push(url.to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl(&refs)?;
    let (text, code) = out.rsplit_once('\n').ok_or("no status from curl")?;
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("bad status {code:?}"))?;
    Ok((code, serde_json::from_str(text).unwrap_or(Value::Null)))
}

/// The administrator and one account per simulated user.
fn set_up(base: &str) -> Result<String, String> {
    let (s, _) = http(
        "POST",
        &format!("{base}/v1/auth/setup"),
        None,
        Some(&json!({"username": "root", "password": ADMIN_PASSWORD})),
    )?;
    if s != 201 {
        return Err(format!("setup answered {s}"));
    }
    let (s, v) = http(
        "POST",
        &format!("{base}/v1/auth/login"),
        None,
        Some(&json!({"username": "root", "password": ADMIN_PASSWORD})),
    )?;
    let admin = v["token"]
        .as_str()
        .filter(|_| s == 200)
        .ok_or(format!("admin login answered {s}"))?
        .to_owned();
    for i in 0..USERS {
        let name = format!("soak-{i}");
        let (s, _) = http(
            "POST",
            &format!("{base}/v1/users"),
            Some(&admin),
            Some(&json!({"username": name, "password": password(&name), "create_api_key": false})),
        )?;
        if s != 201 {
            return Err(format!("creating {name} answered {s}"));
        }
    }
    Ok(admin)
}

/// Both models loaded and the server's pools at their working size before
/// the run: as many chats as the engine runs at once and embeddings in
/// every slot, twice over. Without this the working set is reached at
/// whichever moment the load first happens to peak, which on a fast
/// machine came after the warm-up and looked like a leak.
fn prime(base: &str) -> Result<(), String> {
    // One account per request: the server bounds each caller's share.
    let mut tokens = Vec::new();
    for i in 0..8 {
        let name = format!("soak-{i}");
        let (s, v) = http(
            "POST",
            &format!("{base}/v1/auth/login"),
            None,
            Some(&json!({"username": name, "password": password(&name)})),
        )?;
        match v["token"].as_str() {
            Some(token) if s == 200 => tokens.push(token.to_owned()),
            _ => return Err(format!("priming login answered {s}")),
        }
    }
    let chat = json!({"model": CHAT, "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "Say one sentence about bread."}]});
    let embed = json!({"model": EMBED, "input": ["bread", "a river", "rain", "the moon"]});
    for _ in 0..2 {
        let results: Vec<Result<u16, String>> = std::thread::scope(|scope| {
            let calls: Vec<_> = tokens
                .iter()
                .enumerate()
                .map(|(i, token)| {
                    let (path, body) = if i % 2 == 0 {
                        ("/v1/chat/completions", &chat)
                    } else {
                        ("/v1/embeddings", &embed)
                    };
                    scope.spawn(move || {
                        http("POST", &format!("{base}{path}"), Some(token), Some(body))
                            .map(|(s, _)| s)
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().unwrap_or_else(|_| Err("panicked".to_owned())))
                .collect()
        });
        for r in results {
            match r {
                Ok(200) => {}
                Ok(s) => return Err(format!("priming request answered {s}")),
                Err(e) => return Err(format!("priming request: {e}")),
            }
        }
    }
    Ok(())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn scenarios() -> Result<Vec<Scenario>, GooseError> {
    // People read answers between requests; scripts and admins are quicker.
    let reader = (Duration::from_secs(2), Duration::from_secs(8));
    let quick = (Duration::from_millis(500), Duration::from_millis(2500));
    let chat = scenario!("chat")
        .set_weight(8)?
        .set_wait_time(reader.0, reader.1)?
        .register_transaction(transaction!(chat_login).set_on_start().set_name("login"))
        .register_transaction(
            transaction!(chat_stream)
                .set_weight(2)?
                .set_name("chat (stream)"),
        )
        .register_transaction(transaction!(chat_plain).set_name("chat"))
        .register_transaction(transaction!(completion).set_name("completion"))
        .register_transaction(
            transaction!(embeddings)
                .set_weight(3)?
                .set_name("embeddings"),
        )
        .register_transaction(transaction!(models).set_weight(2)?.set_name("list models"))
        .register_transaction(transaction!(usage).set_name("usage"))
        .register_transaction(transaction!(me).set_weight(2)?.set_name("me"))
        .register_transaction(transaction!(chat_login).set_name("login"));
    let admin = scenario!("admin")
        .set_weight(1)?
        .set_wait_time(quick.0, quick.1)?
        .register_transaction(transaction!(admin_login).set_on_start().set_name("login"))
        .register_transaction(
            transaction!(create_user)
                .set_weight(3)?
                .set_name("create user"),
        )
        .register_transaction(
            transaction!(patch_user)
                .set_weight(3)?
                .set_name("patch user"),
        )
        .register_transaction(
            transaction!(create_key)
                .set_weight(3)?
                .set_name("create API key"),
        )
        .register_transaction(transaction!(list_users).set_name("list users"))
        .register_transaction(transaction!(audit).set_name("audit"));
    let bad = scenario!("bad")
        .set_weight(1)?
        .set_wait_time(quick.0, quick.1)?
        .register_transaction(transaction!(chat_login).set_on_start().set_name("login"))
        .register_transaction(transaction!(bad_request).set_name("bad request"));
    Ok(vec![chat, admin, bad])
}

async fn attack(base: &str, secs: usize) -> Result<GooseMetrics, GooseError> {
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?;
    for s in scenarios()? {
        attack = attack.register_scenario(s);
    }
    // Each user runs its transactions in random order (weights kept), so a
    // short run still sees every kind of request.
    let attack = attack.set_scheduler(GooseScheduler::Random);
    let attack = *attack.set_default(GooseDefault::Host, base)?;
    let attack = *attack.set_default(GooseDefault::Users, USERS)?;
    let attack = *attack.set_default(GooseDefault::IncreaseRate, "10")?;
    let attack = *attack.set_default(GooseDefault::RunTime, secs)?;
    let attack = *attack.set_default(
        GooseDefault::Timeout,
        REQUEST_TIMEOUT_SECS.to_string().as_str(),
    )?;
    let attack = *attack.set_default(GooseDefault::NoPrintMetrics, true)?;
    // Count the ramp-up too: a 5xx while users start is still a 5xx.
    let attack = *attack.set_default(GooseDefault::NoResetMetrics, true)?;
    let attack = *attack.set_default(GooseDefault::Quiet, 1usize)?;
    attack.execute().await
}

fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

/// `cargo xtask soak`.
pub fn soak(secs: u64, release: bool) -> Result<(), String> {
    let profile = if release { "release" } else { "debug" };
    let mut build = cargo();
    build.args(["build", "--bin", "offgrid"]);
    if release {
        build.arg("--release");
    }
    run(&mut build)?;
    let bin = target_dir().join(profile);
    let server = start(&bin)?;
    let admin = set_up(&server.base)?;
    prime(&server.base)?;
    let pid = server.child.id();

    // Warm-up before the measured `secs`: every user started (10 a second),
    // both models loaded, the engine's queue, pools and caches at their
    // working size (RSS still climbs for about a minute here). RSS after it
    // is the baseline the end is compared with.
    let ramp = Duration::from_secs((USERS / 10) as u64);
    let warm_up = Duration::from_secs(WARM_UP_SECS.max(secs / 4));
    let warm_at = ramp + warm_up;
    // RSS every few seconds for the whole run: the baseline is the sample
    // at the end of the warm-up, and the timeline goes into the report so a
    // failure shows whether memory climbed steadily (a leak) or in a step.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push((started.elapsed(), kib));
                }
                std::thread::sleep(RSS_EVERY);
            }
            samples
        })
    };
    eprintln!(
        "xtask: soak: {USERS} users, {} s warm-up then {secs} s, against {} ({profile})",
        warm_at.as_secs(),
        server.base
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let started = Instant::now();
    let metrics = runtime
        .block_on(attack(&server.base, (warm_at.as_secs() + secs) as usize))
        .map_err(|e| format!("goose: {e}"))?;
    let end_rss = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    let warm_rss = samples
        .iter()
        .find(|(at, _)| *at >= warm_at)
        .map(|(_, kib)| *kib);
    eprintln!(
        "xtask: soak: attack done in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let mut failures = Vec::new();

    // Status codes.
    let mut total = 0usize;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (name, agg) in &metrics.requests {
        for (code, n) in &agg.status_code_counts {
            total += n;
            *by_status.entry(*code).or_default() += n;
            if *code >= 500 || *code == 0 {
                failures.push(format!("{name}: {n} answers with status {code}"));
            }
        }
    }
    for e in metrics.errors.values() {
        if !e.error.contains("bad request") {
            failures.push(format!(
                "{} × {} {}: {}",
                e.occurrences, e.method, e.name, e.error
            ));
        }
    }
    let broken = shared()
        .broken
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    failures.extend(broken);

    // Lost writes.
    let ledger = std::mem::take(&mut *shared().ledger.lock().unwrap_or_else(|p| p.into_inner()));
    let mut lost = 0usize;
    for (id, name) in &ledger.users {
        let (s, v) = http(
            "GET",
            &format!("{}/v1/users/{id}", server.base),
            Some(&admin),
            None,
        )?;
        if s != 200 || v["username"] != name.as_str() {
            lost += 1;
            failures.push(format!("created user {name} is missing ({s})"));
        }
    }
    for (key, owner) in &ledger.keys {
        let (s, _) = http(
            "GET",
            &format!("{}/v1/users/me", server.base),
            Some(key),
            None,
        )?;
        if s != 200 {
            lost += 1;
            failures.push(format!("an API key of {owner} does not work ({s})"));
        }
    }
    for (id, (acked, in_flight)) in &ledger.patches {
        let (_, v) = http(
            "GET",
            &format!("{}/v1/users/{id}", server.base),
            Some(&admin),
            None,
        )?;
        let shown = v["display_name"].as_str().map(str::to_owned);
        if shown != *acked && (in_flight.is_none() || shown != *in_flight) {
            lost += 1;
            failures.push(format!(
                "user {id}: display name {shown:?}, acknowledged {acked:?}"
            ));
        }
    }

    // Memory.
    let rss = match (warm_rss, end_rss) {
        (Some(w), Some(e)) => {
            let growth = e as f64 / w as f64 - 1.0;
            if growth > 0.10 {
                failures.push(format!(
                    "RSS grew {:.1}% after warm-up ({} MiB -> {} MiB)",
                    growth * 100.0,
                    w / 1024,
                    e / 1024
                ));
            }
            format!(
                "{} MiB after warm-up, {} MiB at the end ({:+.1}%)",
                w / 1024,
                e / 1024,
                growth * 100.0
            )
        }
        _ => {
            failures.push("could not read the server's RSS".to_owned());
            "unknown".to_owned()
        }
    };
    drop(server);

    // Report.
    println!(
        "\n## cargo xtask soak ({USERS} users, {} s warm-up + {secs} s, {profile} build, {} cores, bcrypt cost 4, max_tokens {MAX_TOKENS})\n",
        warm_at.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("Whole request, body included (a stream until `[DONE]`):\n");
    println!("| endpoint | count | status codes | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let timings = std::mem::take(&mut *shared().timings.lock().unwrap_or_else(|p| p.into_inner()));
    for (name, mut times) in timings {
        times.sort_unstable();
        let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
        for (request, agg) in &metrics.requests {
            if request.ends_with(&format!(" {name}")) {
                for (c, n) in &agg.status_code_counts {
                    *codes.entry(*c).or_default() += n;
                }
            }
        }
        let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            name.replace('|', "\\|"),
            times.len(),
            codes.join(" "),
            ms(quantile(&times, 0.5)),
            ms(quantile(&times, 0.99)),
            ms(quantile(&times, 1.0)),
        );
    }
    let codes: Vec<String> = by_status.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    println!("\n{total} requests; status codes {}.", codes.join(", "));
    println!(
        "Writes acknowledged and found afterwards: {} users, {} API keys, {} patched users; {lost} lost.",
        ledger.users.len(),
        ledger.keys.len(),
        ledger.patches.len()
    );
    println!(
        "Logins refused with 429 (too many in flight from one address) and retried: {}.",
        shared().login_retries.load(Ordering::Relaxed)
    );
    println!("Server RSS: {rss}.");
    let timeline: Vec<String> = samples
        .iter()
        .step_by(2)
        .map(|(at, kib)| format!("{}s {}", at.as_secs(), kib / 1024))
        .collect();
    println!("RSS timeline (MiB): {}.", timeline.join(", "));
    if failures.is_empty() {
        println!("\nsoak: no 5xx, no transport error, no lost write, RSS within 10%.");
        Ok(())
    } else {
        Err(format!("soak failed:\n  {}", failures.join("\n  ")))
    }
}
