//! `cargo xtask bench auth`, measured with wrk (Debian's `wrk` package, a
//! real load generator in its own process) against release builds of the
//! server, all in one invocation so the ratios compare like with like.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{cargo, run};

const DURATION: &str = "10s";
/// Measurements per scenario; the median is reported.
const ROUNDS: usize = 3;

fn median(mut runs: Vec<WrkResult>) -> WrkResult {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

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

pub(crate) struct TempHome(pub(crate) PathBuf);

impl TempHome {
    pub(crate) fn new(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("offgrid-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        Ok(TempHome(dir))
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

pub(crate) fn curl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn start(bin: &Path, tag: &str, env: &[(&str, &str)]) -> Result<Server, String> {
    let home = TempHome::new(tag)?;
    let port = free_port()?;
    let mut cmd = Command::new(bin.join("offgrid"));
    cmd.args(["serve", "--port", &port.to_string()])
        .env("OFFGRID_HOME", &home.0)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|e| format!("start offgrid: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        base,
        _home: home,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if curl(&[&format!("{}/health", server.base)]).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("server did not start".to_owned())
}

fn admin(bin: &Path, home: &Path, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new(bin.join("offgrid-admin"))
        .args(args)
        .env("OFFGRID_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("offgrid-admin: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("offgrid-admin {args:?} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Pulls `"field":"value"` out of a JSON text (enough for our own output).
fn json_field(text: &str, field: &str) -> Result<String, String> {
    let key = format!("\"{field}\":\"");
    let start = text
        .find(&key)
        .ok_or_else(|| format!("no {field} in {text}"))?
        + key.len();
    let end = text[start..]
        .find('"')
        .ok_or_else(|| format!("unterminated {field}"))?;
    Ok(text[start..start + end].to_owned())
}

struct WrkResult {
    rps: f64,
    p99_ms: Option<f64>,
}

fn parse_latency_ms(text: &str) -> Option<f64> {
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        _ => return None,
    })
}

fn wrk(url: &str, connections: u32, header: Option<&str>) -> Result<WrkResult, String> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{DURATION}"),
        "--latency",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    cmd.arg(url);
    let out = cmd
        .output()
        .map_err(|e| format!("wrk: {e} (install it: apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
    let non2xx = text.lines().any(|l| l.contains("Non-2xx"));
    if non2xx {
        return Err(format!("wrk saw errors:\n{text}"));
    }
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_latency_ms(v.trim()));
    Ok(WrkResult { rps, p99_ms })
}

fn ensure_wrk() -> Result<(), String> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: wrk not found; installing Debian's wrk");
    run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "wrk"]))
}

/// One build under test: a single-user server (the unauthenticated peer)
/// and a multi-user one with an admin, a user, a login token and a key.
struct Build {
    name: &'static str,
    single: Server,
    multi: Server,
    token_header: String,
    key_header: String,
}

impl Build {
    fn start(name: &'static str, bin: &Path) -> Result<Self, String> {
        let single = start(bin, &format!("single-{name}"), &[])?;
        let multi = start(
            bin,
            &format!("multi-{name}"),
            &[("OFFGRID_MULTI_USER", "true")],
        )?;
        let home = multi._home.0.clone();
        admin(
            bin,
            &home,
            &["setup", "root", "--password-stdin"],
            "bench-password-1\n",
        )?;
        let created = admin(
            bin,
            &home,
            &["--json", "users", "create", "alice", "--password-stdin"],
            "alice-password-1\n",
        )?;
        let key = json_field(&created, "api_key")?;
        let login = curl(&[
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"username":"alice","password":"alice-password-1"}"#,
            &format!("{}/v1/auth/login", multi.base),
        ])?;
        let token = json_field(&login, "token")?;
        Ok(Build {
            name,
            single,
            multi,
            token_header: format!("Authorization: Bearer {token}"),
            key_header: format!("Authorization: Bearer {key}"),
        })
    }

    /// (url, header) of the three `/v1/users/me` scenarios.
    fn scenarios(&self) -> [(String, Option<&str>); 3] {
        let single_me = format!("{}/v1/users/me", self.single.base);
        let multi_me = format!("{}/v1/users/me", self.multi.base);
        [
            (single_me, None),
            (multi_me.clone(), Some(&self.token_header)),
            (multi_me, Some(&self.key_header)),
        ]
    }
}

/// What one build measured.
struct Measured {
    unauth: WrkResult,
    token: WrkResult,
    key: WrkResult,
    config: WrkResult,
    logins: usize,
}

/// p99 of `/v1/system/config` while 10 logins run at once, in loops.
fn config_during_logins(base: &str) -> Result<(WrkResult, usize), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let loopers: Vec<_> = (0..10)
        .map(|_| {
            let (stop, logins, base) = (stop.clone(), logins.clone(), base.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = curl(&[
                        "-H",
                        "content-type: application/json",
                        "-d",
                        r#"{"username":"root","password":"bench-password-1"}"#,
                        &format!("{base}/v1/auth/login"),
                    ]);
                    if ok.is_ok_and(|b| b.contains("token")) {
                        logins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let config = wrk(&format!("{base}/v1/system/config"), 4, None);
    stop.store(true, Ordering::Relaxed);
    for t in loopers {
        let _ = t.join();
    }
    Ok((config?, logins.load(Ordering::Relaxed)))
}

/// `cargo xtask bench auth [--before DIR]`. With `--before`, DIR holds
/// `offgrid` and `offgrid-admin` from an earlier commit: both builds run
/// at once, every scenario of both is interleaved round by round, and the
/// report adds the after/before ratio of each.
pub fn auth(before: Option<PathBuf>) -> Result<(), String> {
    ensure_wrk()?;
    run(cargo().args([
        "build",
        "--release",
        "--bin",
        "offgrid",
        "--bin",
        "offgrid-admin",
    ]))?;
    let bin = target_dir().join("release");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Each build's peer is its own single-user server without credentials;
    // the multi-user one has the default bcrypt cost (12). All servers run
    // at once so the scenarios can be interleaved: each is measured ROUNDS
    // times, alternating, and the median is reported, which keeps drift on
    // a shared machine out of the ratios.
    let mut builds = Vec::new();
    if let Some(dir) = &before {
        builds.push(Build::start("before", dir)?);
    }
    builds.push(Build::start("after", &bin)?);
    let scenarios: Vec<Vec<(String, Option<&str>)>> =
        builds.iter().map(|b| b.scenarios().to_vec()).collect();
    for (url, header) in scenarios.iter().flatten() {
        let _ = wrk(url, 8, *header)?; // warm-up
    }
    let mut samples: Vec<[Vec<WrkResult>; 3]> = builds
        .iter()
        .map(|_| [Vec::new(), Vec::new(), Vec::new()])
        .collect();
    for _ in 0..ROUNDS {
        for (b, list) in scenarios.iter().enumerate() {
            for (i, (url, header)) in list.iter().enumerate() {
                samples[b][i].push(wrk(url, 32, *header)?);
            }
        }
    }
    let mut measured = Vec::new();
    for (build, runs) in builds.iter().zip(samples) {
        let [unauth, token, key] = runs.map(median);
        let (config, logins) = config_during_logins(&build.multi.base)?;
        measured.push((
            build.name,
            Measured {
                unauth,
                token,
                key,
                config,
                logins,
            },
        ));
    }
    drop(builds);

    println!(
        "\n## cargo xtask bench auth ({cores} cores, wrk -t2 -c32 -d{DURATION}, release build, median of {ROUNDS})\n"
    );
    let p99 = |r: &WrkResult| r.p99_ms.map_or("?".to_owned(), |v| format!("{v:.2} ms"));
    let mut failures = Vec::new();
    for (name, m) in &measured {
        if before.is_some() {
            println!("### {name}\n");
        }
        println!("| scenario | requests/s | p99 | ratio to unauthenticated |");
        println!("|---|---|---|---|");
        let ratio_token = m.token.rps / m.unauth.rps;
        let ratio_key = m.key.rps / m.unauth.rps;
        println!(
            "| GET /v1/users/me, single-user, no credentials | {:.0} | {} | 1.00 |",
            m.unauth.rps,
            p99(&m.unauth)
        );
        println!(
            "| GET /v1/users/me, PASETO token | {:.0} | {} | {ratio_token:.2} |",
            m.token.rps,
            p99(&m.token)
        );
        println!(
            "| GET /v1/users/me, API key | {:.0} | {} | {ratio_key:.2} |",
            m.key.rps,
            p99(&m.key)
        );
        println!(
            "| GET /v1/system/config during 10 concurrent logins ({} logins done, bcrypt cost 12) | {:.0} | {} | - |\n",
            m.logins,
            m.config.rps,
            p99(&m.config)
        );
        if *name == "after" {
            if ratio_token < 0.90 || ratio_key < 0.90 {
                failures.push(format!("authenticated/unauthenticated ratio below 0.90 (token {ratio_token:.2}, key {ratio_key:.2})"));
            }
            match m.config.p99_ms {
                Some(p) if p < 20.0 => {}
                other => failures.push(format!(
                    "p99 of /v1/system/config during logins is {other:?} ms, target < 20 ms"
                )),
            }
        }
    }
    if let [(_, b), (_, a)] = measured.as_slice() {
        println!("### after / before\n");
        println!("| scenario | before req/s | after req/s | after/before |");
        println!("|---|---|---|---|");
        for (label, x, y) in [
            ("single-user, no credentials", &b.unauth, &a.unauth),
            ("PASETO token", &b.token, &a.token),
            ("API key", &b.key, &a.key),
            ("system/config during logins", &b.config, &a.config),
        ] {
            println!(
                "| {label} | {:.0} | {:.0} | {:.2} |",
                x.rps,
                y.rps,
                y.rps / x.rps
            );
        }
    }
    if failures.is_empty() {
        println!("\ntargets met: ratio >= 0.90, p99 < 20 ms");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
