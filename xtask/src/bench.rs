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

/// `cargo xtask bench auth`.
pub fn auth() -> Result<(), String> {
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

    // Peer: single-user mode, no credentials; and multi-user mode with the
    // default bcrypt cost (12). Both run at once so the scenarios can be
    // interleaved: each is measured ROUNDS times, alternating, and the
    // median is reported, which keeps drift on a shared machine out of the
    // ratios.
    let single = start(&bin, "single", &[])?;
    let multi = start(&bin, "multi", &[("OFFGRID_MULTI_USER", "true")])?;
    let home = multi._home.0.clone();
    admin(
        &bin,
        &home,
        &["setup", "root", "--password-stdin"],
        "bench-password-1\n",
    )?;
    let created = admin(
        &bin,
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
    let token_header = format!("Authorization: Bearer {token}");
    let key_header = format!("Authorization: Bearer {key}");
    let single_me = format!("{}/v1/users/me", single.base);
    let multi_me = format!("{}/v1/users/me", multi.base);
    let scenarios: [(&str, Option<&str>); 3] = [
        (&single_me, None),
        (&multi_me, Some(&token_header)),
        (&multi_me, Some(&key_header)),
    ];
    for (url, header) in scenarios {
        let _ = wrk(url, 8, header)?; // warm-up
    }
    let mut samples: [Vec<WrkResult>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (i, (url, header)) in scenarios.iter().enumerate() {
            samples[i].push(wrk(url, 32, *header)?);
        }
    }
    drop(single);
    let [unauth, with_token, with_key] = samples.map(median);

    // p99 of /v1/system/config while 10 logins run at once, in loops.
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let loopers: Vec<_> = (0..10)
        .map(|_| {
            let (stop, logins, base) = (stop.clone(), logins.clone(), multi.base.clone());
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
    let config = wrk(&format!("{}/v1/system/config", multi.base), 4, None)?;
    stop.store(true, Ordering::Relaxed);
    for t in loopers {
        let _ = t.join();
    }
    drop(multi);

    let ratio_token = with_token.rps / unauth.rps;
    let ratio_key = with_key.rps / unauth.rps;
    println!(
        "\n## cargo xtask bench auth ({cores} cores, wrk -t2 -c32 -d{DURATION}, release build)\n"
    );
    println!("| scenario | requests/s | p99 | ratio to unauthenticated |");
    println!("|---|---|---|---|");
    let p99 = |r: &WrkResult| r.p99_ms.map_or("?".to_owned(), |v| format!("{v:.2} ms"));
    println!(
        "| GET /v1/users/me, single-user, no credentials | {:.0} | {} | 1.00 |",
        unauth.rps,
        p99(&unauth)
    );
    println!(
        "| GET /v1/users/me, PASETO token | {:.0} | {} | {ratio_token:.2} |",
        with_token.rps,
        p99(&with_token)
    );
    println!(
        "| GET /v1/users/me, API key | {:.0} | {} | {ratio_key:.2} |",
        with_key.rps,
        p99(&with_key)
    );
    println!(
        "| GET /v1/system/config during 10 concurrent logins ({} logins done, bcrypt cost 12) | {:.0} | {} | - |",
        logins.load(Ordering::Relaxed),
        config.rps,
        p99(&config)
    );
    let mut failures = Vec::new();
    if ratio_token < 0.90 || ratio_key < 0.90 {
        failures.push(format!("authenticated/unauthenticated ratio below 0.90 (token {ratio_token:.2}, key {ratio_key:.2})"));
    }
    match config.p99_ms {
        Some(p) if p < 20.0 => {}
        other => failures.push(format!(
            "p99 of /v1/system/config during logins is {other:?} ms, target < 20 ms"
        )),
    }
    if failures.is_empty() {
        println!("\ntargets met: ratio >= 0.90, p99 < 20 ms");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
