//! `cargo xtask bench inference`: OffGrid's engine against llama.cpp on the
//! default SmolLM2 GGUF, in one invocation, at the same thread count and
//! on the same prompt token ids.
//!
//! - OffGrid: `crates/inference/examples/bench.rs` (release build): prompt
//!   and decode tokens/s of the forward pass, time to first token through
//!   the engine, aggregate tokens/s with 1 and 4 concurrent streams, peak
//!   RSS.
//! - llama.cpp: `llamacpp_peer.py` with `llama-cpp-python` (installed into
//!   `~/.cache/offgrid/llamacpp-venv` with pip on first use; it compiles
//!   llama.cpp for this CPU, which takes a few minutes once).
//! - llama.cpp's own `llama-batched-bench`, built once from the same
//!   sdist's llama.cpp (`batched_peer.rs`): aggregate decode tokens/s with
//!   1, 4 and 8 parallel sequences, against OffGrid's 1, 4 and 8 streams.
//! - The release server with both default models loaded: time to first
//!   token and decode speed through the whole request path (HTTP), and its
//!   resident memory; with `--before DIR`, an earlier build's server too,
//!   in turns, with after/before ratios.
//!
//! Rounds alternate OffGrid and the llama.cpp peers; medians are reported
//! with the ratios and the issue's targets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bench::{TempHome, curl, free_port, target_dir};
use crate::models::cache_dir;
use crate::{cargo, run};

/// Pinned peer version (the one measured in docs/PERFORMANCE.md).
pub(crate) const LLAMA_CPP_PYTHON: &str = "llama-cpp-python==0.3.36";
const ROUNDS: usize = 3;
/// Rounds through the server per build.
const HTTP_ROUNDS: usize = 5;
const PEER: &str = include_str!("llamacpp_peer.py");
/// A streamed chat through the release server, timed from outside and by
/// the server's own log (see the script's docstring).
const SERVED: &str = include_str!("served_path.py");
/// Words of the served path's prompt (about 190 tokens with the template).
const SERVED_WORDS: &str = "150";
/// Rounds of the served path (medians).
const SERVED_ROUNDS: &str = "5";

/// The venv's python, with llama-cpp-python installed.
fn peer_python() -> Result<PathBuf, String> {
    let venv = cache_dir()?.join("llamacpp-venv");
    let python = venv.join("bin").join("python");
    let ok = python.exists()
        && Command::new(&python)
            .args([
                "-c",
                "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '0.3.36')",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("xtask: installing {LLAMA_CPP_PYTHON} (builds llama.cpp; a few minutes once)");
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(&python).args(["-m", "pip", "install", "-q", LLAMA_CPP_PYTHON]))?;
    }
    Ok(python)
}

fn json_of(out: std::process::Output, what: &str) -> Result<Value, String> {
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{what}: bad JSON: {e}"))
}

fn median(values: &[Value], key: &str) -> f64 {
    let mut v: Vec<f64> = values.iter().filter_map(|r| r[key].as_f64()).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Resident and peak memory (MB) of a running process.
fn rss_mb(pid: u32) -> Result<(f64, f64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// A release server on the installed models.
struct Served {
    child: std::process::Child,
    base: String,
    _home: TempHome,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(bin: &Path, models: &Path, tag: &str) -> Result<Self, String> {
        let home = TempHome::new(tag)?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(models, home.0.join("models")).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let child = Command::new(bin.join("offgrid"))
            .args(["serve", "--port", &port.to_string()])
            .env("OFFGRID_HOME", &home.0)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start offgrid: {e}"))?;
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&[&format!("{}/health", served.base)]).is_err() {
            if Instant::now() > deadline {
                return Err("server did not start".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(served)
    }

    /// POSTs `body` and returns the answer and the seconds it took.
    fn post(&self, path: &str, body: &str) -> Result<(Value, f64), String> {
        let started = Instant::now();
        let text = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &format!("{}{path}", self.base),
        ])?;
        let secs = started.elapsed().as_secs_f64();
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}: {text}"))?;
        if v.get("error").is_some() {
            return Err(format!("{path}: {text}"));
        }
        Ok((v, secs))
    }

    /// Loads both models with one request each.
    fn load(&self) -> Result<(), String> {
        self.post(
            "/v1/chat/completions",
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}"#,
        )?;
        self.post(
            "/v1/embeddings",
            r#"{"model":"all-minilm-l6-v2","input":["one sentence","another one"]}"#,
        )?;
        Ok(())
    }

    /// One round through the whole request path: a chat answer of one
    /// token (time to first token, ms) and a 64-token greedy completion
    /// (tokens/s after the first).
    fn round(&self) -> Result<Value, String> {
        let (_, first) = self.post(
            "/v1/chat/completions",
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":"Write a long story about a lighthouse keeper and the sea."}],"max_tokens":1,"temperature":0}"#,
        )?;
        let (v, total) = self.post(
            "/v1/completions",
            r#"{"model":"smollm2-135m-instruct","prompt":"The history of the lighthouse begins","max_tokens":64,"temperature":0}"#,
        )?;
        let tokens = v["usage"]["completion_tokens"].as_f64().unwrap_or(0.0);
        let decode = (total - first).max(1e-3);
        Ok(serde_json::json!({
            "http_ttft_ms": first * 1000.0,
            "http_tps": (tokens - 1.0).max(0.0) / decode,
        }))
    }
}

/// OffGrid's 1, 4 and 8 streams against llama-batched-bench's S_TG
/// (aggregate decode tokens/s) at B = 1, 4 and 8, and how each scales.
fn batched_report(ours: &[Value], batched: &[Value]) {
    println!(
        "\nBatched decode, aggregate tokens/s, {} tokens generated per stream on a 20-token prompt; llama.cpp: llama-batched-bench S_TG (decode only), median of {ROUNDS} rounds",
        ours[0]["gen_tokens"]
    );
    println!(
        "{:<28} {:>10} {:>14} {:>8} {:>8}",
        "", "offgrid", "llama.cpp", "ratio", "target"
    );
    let mut tps = Vec::new();
    for b in crate::batched_peer::PARALLEL {
        let (o, p) = (
            median(ours, &format!("stream{b}_tps")),
            median(batched, &format!("s_tg_b{b}")),
        );
        let name = format!("{b} stream{} tokens/s", if b == 1 { "" } else { "s" });
        println!(
            "{name:<28} {o:>10.1} {p:>14.1} {:>7.2}x {:>8}",
            o / p,
            ">=0.9x"
        );
        tps.push((b, o, p));
    }
    if let Some(&(_, one_o, one_p)) = tps.first() {
        for &(b, o, p) in &tps[1..] {
            let (o, p) = (o / one_o, p / one_p);
            let name = format!("{b} streams / 1 stream");
            println!("{name:<28} {o:>9.2}x {p:>13.2}x {:>7.2}x", o / p);
        }
    }
    let each = |key: &str| {
        crate::batched_peer::PARALLEL
            .map(|b| format!("B={b} {:.1}", median(batched, &format!("{key}{b}"))))
            .join(", ")
    };
    println!(
        "llama-batched-bench: S_PP (prompt tokens/s) {}; generated tokens over the whole time, prompts included (as offgrid's streams count): {}",
        each("s_pp_b"),
        each("gen_b")
    );
}

/// `cargo xtask bench inference [--before DIR]`. With `--before`, DIR
/// holds `offgrid` from an earlier commit, measured through the server in
/// turns with this one.
pub fn inference(before: Option<PathBuf>) -> Result<(), String> {
    crate::models::install(None)?;
    let models = crate::models::home_dir()?.join("models");
    let gguf = models
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let python = peer_python()?;
    let tools = crate::batched_peer::binaries()?;
    run(cargo().args(["build", "--release", "--workspace", "--bins", "--examples"]))?;
    let bin = target_dir().join("release");
    let ours_bin = bin.join("examples").join("bench");
    let scratch = TempHome::new("inference")?;
    let peer_script = scratch.0.join("llamacpp_peer.py");
    std::fs::write(&peer_script, PEER).map_err(|e| e.to_string())?;
    let ids_path = scratch.0.join("ids.json");

    let mut ours = Vec::new();
    let mut peer = Vec::new();
    let mut batched = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("xtask: round {round}/{ROUNDS}: offgrid");
        let r = json_of(
            Command::new(&ours_bin)
                .arg(&gguf)
                .output()
                .map_err(|e| e.to_string())?,
            "offgrid bench",
        )?;
        std::fs::write(&ids_path, r["prompt_ids"].to_string()).map_err(|e| e.to_string())?;
        let threads = r["threads"].as_u64().unwrap_or(2).to_string();
        ours.push(r);
        eprintln!("xtask: round {round}/{ROUNDS}: llama.cpp");
        peer.push(json_of(
            Command::new(&python)
                .arg(&peer_script)
                .arg(&gguf)
                .arg(&ids_path)
                .args([threads.as_str(), "128", "20", "3"])
                .output()
                .map_err(|e| e.to_string())?,
            "llama.cpp peer",
        )?);
        eprintln!("xtask: round {round}/{ROUNDS}: llama-batched-bench");
        batched.push(crate::batched_peer::measure(
            &tools.batched,
            &gguf,
            &threads,
        )?);
    }
    // The request path through the server, after (and before) in turns.
    let mut builds = Vec::new();
    if let Some(dir) = &before {
        builds.push(("before", Served::start(dir, &models, "before")?));
    }
    builds.push(("after", Served::start(&bin, &models, "after")?));
    for (_, served) in &builds {
        served.load()?;
    }
    let mut http: Vec<Vec<Value>> = builds.iter().map(|_| Vec::new()).collect();
    for _ in 0..HTTP_ROUNDS {
        for (i, (_, served)) in builds.iter().enumerate() {
            http[i].push(served.round()?);
        }
    }
    let mut memory = Vec::new();
    for (_, served) in &builds {
        memory.push(rss_mb(served.child.id())?);
    }
    let names: Vec<&str> = builds.iter().map(|(name, _)| *name).collect();
    drop(builds);
    let (rss, hwm) = memory.last().copied().unwrap_or((f64::NAN, f64::NAN));

    // A streamed chat through the server against llama-bench on the same
    // prompt length.
    eprintln!("xtask: the served path, and llama-bench");
    let served_script = scratch.0.join("served_path.py");
    std::fs::write(&served_script, SERVED).map_err(|e| e.to_string())?;
    let served = json_of(
        Command::new("python3")
            .arg(&served_script)
            .arg(bin.join("offgrid"))
            .args([SERVED_WORDS, SERVED_ROUNDS])
            .output()
            .map_err(|e| e.to_string())?,
        "served path",
    )?;
    let served_prompt = served["prompt_tokens"]
        .as_f64()
        .ok_or("served path: no prompt_tokens")? as u64;
    let threads_arg = ours[0]["threads"].as_u64().unwrap_or(2).to_string();
    let llama_bench =
        crate::batched_peer::llama_bench(&tools.bench, &gguf, &threads_arg, served_prompt, 128)?;

    let threads = ours[0]["threads"].as_u64().unwrap_or(0);
    let version = peer[0]["version"].as_str().unwrap_or("?");
    println!(
        "\nSmolLM2-135M-Instruct Q4_1, {threads} threads, prompt {} tokens, {} generated, median of {ROUNDS} rounds",
        ours[0]["prompt_tokens"], ours[0]["gen_tokens"]
    );
    println!(
        "{:<28} {:>10} {:>14} {:>8} {:>8}",
        "", "offgrid", "llama.cpp", "ratio", "target"
    );
    let row = |name: &str, key: &str, higher_better: bool, target: &str| {
        let (o, p) = (median(&ours, key), median(&peer, key));
        let ratio = if higher_better { o / p } else { p / o };
        println!("{name:<28} {o:>10.1} {p:>14.1} {ratio:>7.2}x {target:>8}");
    };
    row("prompt tokens/s", "prompt_tps", true, ">=1.0x");
    row("decode tokens/s", "decode_tps", true, ">=1.0x");
    row("time to first token, ms", "ttft_ms", false, ">=1.0x");
    row("peak RSS (model only), MB", "peak_rss_mb", false, "");
    row("load, ms", "load_ms", false, "");
    let (one, four, eight) = (
        median(&ours, "stream1_tps"),
        median(&ours, "stream4_tps"),
        median(&ours, "stream8_tps"),
    );
    println!(
        "offgrid engine (continuous batching, simd {}), decode tokens/s after each stream's first token (as llama-batched-bench's S_TG), 1 stream: {one:.1}; 4 streams: {four:.1} aggregate ({:.2}x, target >=1.8x); 8 streams: {eight:.1} ({:.2}x, target >=2.2x)",
        ours[0]["simd"].as_str().unwrap_or("?"),
        four / one,
        eight / one
    );
    let (one_all, four_all, eight_all) = (
        median(&ours, "stream1_total_tps"),
        median(&ours, "stream4_total_tps"),
        median(&ours, "stream8_total_tps"),
    );
    println!(
        "  the same runs end to end (their prompts read too): 1 stream {one_all:.1}; 4 streams {four_all:.1} ({:.2}x); 8 streams {eight_all:.1} ({:.2}x)",
        four_all / one_all,
        eight_all / one_all
    );
    let same = median(&ours, "itl_alone_same_p50_ms");
    let first = median(&ours, "itl_alone_p50_ms");
    let p99 = median(&ours, "itl_contended_p99_ms");
    println!(
        "a running stream's inter-token latency while another user's {}-token prompt is read: p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms; the same tokens of the same stream alone: p50 {same:.1} ms, p99 {:.1} ms; p99 contended / p50 alone {:.2}x (target <=3x); against its first 200 tokens alone (p50 {first:.1} ms, at a shorter context): {:.2}x; that prompt's first token after {:.0} ms",
        ours[0]["long_prompt_tokens"],
        median(&ours, "itl_contended_p50_ms"),
        median(&ours, "itl_contended_max_ms"),
        median(&ours, "itl_alone_same_p99_ms"),
        p99 / same,
        p99 / first,
        median(&ours, "long_prompt_ttft_ms"),
    );
    println!(
        "offgrid serve with both default models loaded: RSS {rss:.0} MB, peak {hwm:.0} MB (target <400 MB)"
    );
    println!(
        "peer: llama-cpp-python {version}; ratios are offgrid/llama.cpp (time: llama.cpp/offgrid)"
    );
    batched_report(&ours, &batched);
    served_report(&served, &llama_bench);
    println!(
        "\nThrough the server (HTTP, release), median of {HTTP_ROUNDS} rounds: a 1-token chat answer (time to first token) and a 64-token greedy completion"
    );
    println!(
        "{:<10} {:>16} {:>16} {:>10} {:>10}",
        "build", "TTFT ms", "decode tok/s", "RSS MB", "peak MB"
    );
    for ((name, runs), (rss, hwm)) in names.iter().zip(&http).zip(&memory) {
        println!(
            "{name:<10} {:>16.1} {:>16.1} {rss:>10.0} {hwm:>10.0}",
            median(runs, "http_ttft_ms"),
            median(runs, "http_tps")
        );
    }
    if let [before, after] = http.as_slice() {
        println!(
            "after/before: TTFT {:.2}x (time: before/after), decode {:.2}x",
            median(before, "http_ttft_ms") / median(after, "http_ttft_ms"),
            median(after, "http_tps") / median(before, "http_tps")
        );
    }
    Ok(())
}

/// The served path against llama-bench.
fn served_report(served: &Value, llama: &Value) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nThe served path: a streamed chat through HTTP (release server, {} prompt tokens, 128 greedy tokens, median of {SERVED_ROUNDS}) against llama-bench on the same prompt length",
        served["prompt_tokens"]
    );
    println!(
        "{:<40} {:>10} {:>12} {:>8} {:>8}",
        "", "offgrid", "llama-bench", "ratio", "target"
    );
    let row = |name: &str, o: f64, p: f64| {
        println!(
            "{name:<40} {o:>10.1} {p:>12.1} {:>7.2}x {:>8}",
            o / p,
            ">=1.0x"
        );
    };
    row(
        "prompt tokens/s, client, to first token",
        f(served, "client_prompt_tps"),
        f(llama, "pp_tps"),
    );
    row(
        "decode tokens/s, client, after it",
        f(served, "client_decode_tps"),
        f(llama, "tg_tps"),
    );
    println!(
        "inside the server: {:.2} ms until the engine had it, {:.2} ms queued, prompt at {:.1} tokens/s, decode at {:.1} tokens/s; outside the engine {:.2} ms of the client's {:.1} ms to the first token",
        f(served, "server_submit_ms"),
        f(served, "server_queued_ms"),
        f(served, "engine_prompt_tps"),
        f(served, "engine_decode_tps"),
        f(served, "outside_engine_ms"),
        f(served, "client_ttft_ms"),
    );
}
