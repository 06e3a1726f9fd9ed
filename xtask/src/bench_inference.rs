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
//! - The release server with both default models loaded: its resident
//!   memory after one chat and one embedding request.
//!
//! Rounds alternate OffGrid and llama.cpp; medians are reported with the
//! ratios and the issue's targets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bench::{TempHome, curl, free_port, target_dir};
use crate::models::cache_dir;
use crate::{cargo, run};

/// Pinned peer version (the one measured in docs/PERFORMANCE.md).
const LLAMA_CPP_PYTHON: &str = "llama-cpp-python==0.3.36";
const ROUNDS: usize = 3;
const PEER: &str = include_str!("llamacpp_peer.py");

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

/// Starts the release server on the installed models, loads both with one
/// request each, and reads its memory.
fn server_rss(bin: &Path, models: &Path) -> Result<(f64, f64), String> {
    let home = TempHome::new("rss")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(models, home.0.join("models")).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let mut child = Command::new(bin.join("offgrid"))
        .args(["serve", "--port", &port.to_string()])
        .env("OFFGRID_HOME", &home.0)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start offgrid: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&[&format!("{base}/health")]).is_err() {
            if Instant::now() > deadline {
                return Err("server did not start".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let post = |path: &str, body: &str| {
            curl(&[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                body,
                &format!("{base}{path}"),
            ])
        };
        post(
            "/v1/chat/completions",
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}"#,
        )?;
        post(
            "/v1/embeddings",
            r#"{"model":"all-minilm-l6-v2","input":["one sentence","another one"]}"#,
        )?;
        rss_mb(child.id())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `cargo xtask bench inference`.
pub fn inference() -> Result<(), String> {
    crate::models::install(None)?;
    let models = crate::models::home_dir()?.join("models");
    let gguf = models
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let python = peer_python()?;
    run(cargo().args(["build", "--release", "--workspace", "--bins", "--examples"]))?;
    let bin = target_dir().join("release");
    let ours_bin = bin.join("examples").join("bench");
    let scratch = TempHome::new("inference")?;
    let peer_script = scratch.0.join("llamacpp_peer.py");
    std::fs::write(&peer_script, PEER).map_err(|e| e.to_string())?;
    let ids_path = scratch.0.join("ids.json");

    let mut ours = Vec::new();
    let mut peer = Vec::new();
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
    }
    let (rss, hwm) = server_rss(&bin, &models)?;

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
    row("prompt tokens/s", "prompt_tps", true, ">=0.35x");
    row("decode tokens/s", "decode_tps", true, ">=0.5x");
    row("time to first token, ms", "ttft_ms", false, "<250ms");
    row("peak RSS (model only), MB", "peak_rss_mb", false, "");
    row("load, ms", "load_ms", false, "");
    let (one, four) = (median(&ours, "stream1_tps"), median(&ours, "stream4_tps"));
    println!(
        "offgrid engine, 1 stream: {one:.1} tok/s; 4 streams: {four:.1} tok/s aggregate ({:.2}x, target >=1.0x)",
        four / one
    );
    println!(
        "offgrid serve with both default models loaded: RSS {rss:.0} MB, peak {hwm:.0} MB (target <400 MB)"
    );
    println!(
        "peer: llama-cpp-python {version}; ratios are offgrid/llama.cpp (time: llama.cpp/offgrid)"
    );
    Ok(())
}
