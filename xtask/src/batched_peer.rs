//! llama.cpp's own benchmark tools as peers of `cargo xtask bench
//! inference`: `llama-batched-bench` (batched decode) and `llama-bench`
//! (prompt and decode speed, against the served path), built from the
//! llama.cpp that the pinned llama-cpp-python sdist vendors (the same
//! source as the Python peer) and run on the same GGUF at the same thread
//! count.
//!
//! The build is done once and cached in `~/.cache/offgrid/llamacpp-build`
//! (sdist from pip, cmake from pip into `~/.cache/offgrid/cmake-venv`, the
//! system C/C++ compiler; a few minutes on two cores).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use crate::bench_inference::LLAMA_CPP_PYTHON;
use crate::models::cache_dir;
use crate::run;

/// Parallel sequences (llama-batched-bench's B), compared with OffGrid's
/// `stream{B}_tps`.
pub(crate) const PARALLEL: [u64; 3] = [1, 4, 8];
/// Prompt tokens per sequence (OffGrid's streams read 20 too).
const PROMPT: &str = "20";
/// Generated tokens per sequence (as OffGrid's streams).
const GENERATE: &str = "128";

/// The cmake of a venv of its own (there is no system cmake).
fn cmake() -> Result<PathBuf, String> {
    let venv = cache_dir()?.join("cmake-venv");
    let cmake = venv.join("bin").join("cmake");
    if !cmake.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin").join("python"))
            .args(["-m", "pip", "install", "-q", "cmake"]))?;
    }
    Ok(cmake)
}

/// The vendored llama.cpp of the pinned sdist, downloaded and unpacked
/// once.
fn source(root: &Path, version: &str) -> Result<PathBuf, String> {
    let unpacked = root.join(format!("llama_cpp_python-{version}"));
    let src = unpacked.join("vendor").join("llama.cpp");
    if src.join("CMakeLists.txt").exists() {
        return Ok(src);
    }
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let python = cache_dir()?.join("cmake-venv").join("bin").join("python");
    // `--no-binary` for this one package only: with `:all:`, pip builds
    // cmake from source just to read the sdist's metadata.
    run(Command::new(python)
        .args(["-m", "pip", "download", "-q", "--no-deps"])
        .args(["--no-binary", "llama-cpp-python", "-d"])
        .arg(root)
        .arg(LLAMA_CPP_PYTHON))?;
    let tarball = root.join(format!("llama_cpp_python-{version}.tar.gz"));
    // Unpack beside, then rename, so an interrupted run leaves no half tree.
    let partial = root.join("unpacking");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| e.to_string())?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&partial))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::rename(
        partial.join(unpacked.file_name().unwrap_or_default()),
        &unpacked,
    )
    .map_err(|e| format!("unpack {}: {e}", tarball.display()))?;
    let _ = std::fs::remove_dir_all(&partial);
    let _ = std::fs::remove_file(&tarball);
    Ok(src)
}

/// The two tools' paths.
pub(crate) struct Tools {
    /// `llama-batched-bench`.
    pub batched: PathBuf,
    /// `llama-bench`.
    pub bench: PathBuf,
}

/// `llama-batched-bench` and `llama-bench`, built on first use (only those
/// targets, for this CPU, statically linked).
pub(crate) fn binaries() -> Result<Tools, String> {
    let version = LLAMA_CPP_PYTHON.rsplit("==").next().unwrap_or_default();
    let root = cache_dir()?.join("llamacpp-build");
    let build = root.join(format!("build-{version}"));
    let tools = Tools {
        batched: build.join("bin").join("llama-batched-bench"),
        bench: build.join("bin").join("llama-bench"),
    };
    if tools.batched.exists() && tools.bench.exists() {
        return Ok(tools);
    }
    eprintln!(
        "xtask: building llama-batched-bench and llama-bench from the {LLAMA_CPP_PYTHON} sdist (a few minutes once)"
    );
    let cmake = cmake()?;
    let src = source(&root, version)?;
    run(Command::new(&cmake)
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .args([
            "-DCMAKE_BUILD_TYPE=Release",
            "-DGGML_NATIVE=ON",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_OPENSSL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=OFF",
            "-DLLAMA_BUILD_APP=OFF",
        ]))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    run(Command::new(&cmake)
        .arg("--build")
        .arg(&build)
        .args([
            "--config",
            "Release",
            "--target",
            "llama-batched-bench",
            "llama-bench",
        ])
        .arg(format!("-j{jobs}")))?;
    let missing = [&tools.batched, &tools.bench]
        .into_iter()
        .find(|b| !b.exists())
        .map(|b| b.display().to_string());
    match missing {
        Some(missing) => Err(format!("the build made no {missing}")),
        None => Ok(tools),
    }
}

/// `llama-bench` on `gguf`: prompt tokens/s reading `prompt` tokens
/// (`pp_tps`) and decode tokens/s generating `generate` (`tg_tps`), its
/// own average of 3 repetitions.
pub(crate) fn llama_bench(
    bin: &Path,
    gguf: &Path,
    threads: &str,
    prompt: u64,
    generate: u64,
) -> Result<Value, String> {
    let out = Command::new(bin)
        .arg("-m")
        .arg(gguf)
        .args(["-t", threads, "-ngl", "0", "-r", "3", "-o", "json"])
        .args(["-p", &prompt.to_string(), "-n", &generate.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "llama-bench failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_llama_bench(&String::from_utf8_lossy(&out.stdout))
}

/// llama-bench's JSON array: one test reads a prompt (`n_gen` 0), one
/// generates (`n_prompt` 0); `avg_ts` is tokens/s.
fn parse_llama_bench(stdout: &str) -> Result<Value, String> {
    let start = stdout.find('[').ok_or("llama-bench: no JSON array")?;
    let tests: Vec<Value> =
        serde_json::from_str(&stdout[start..]).map_err(|e| format!("llama-bench: {e}"))?;
    let mut found = Map::new();
    for t in &tests {
        let (Some(p), Some(g), Some(ts)) = (
            t["n_prompt"].as_u64(),
            t["n_gen"].as_u64(),
            t["avg_ts"].as_f64(),
        ) else {
            return Err(format!("llama-bench: no n_prompt/n_gen/avg_ts in {t}"));
        };
        let key = match (p, g) {
            (_, 0) => "pp_tps",
            (0, _) => "tg_tps",
            _ => continue,
        };
        found.insert(key.into(), Value::from(ts));
    }
    match ["pp_tps", "tg_tps"]
        .iter()
        .find(|k| !found.contains_key(**k))
    {
        Some(k) => Err(format!("llama-bench: no {k} test in its output")),
        None => Ok(Value::Object(found)),
    }
}

/// One run of `bin` on `gguf`: per B in [`PARALLEL`], `s_tg_b{B}` (S_TG,
/// aggregate decode tokens/s), `s_pp_b{B}` (S_PP, prompt tokens/s) and
/// `gen_b{B}` (generated tokens over the whole time, prompts included,
/// as OffGrid's streams count them).
pub(crate) fn measure(bin: &Path, gguf: &Path, threads: &str) -> Result<Value, String> {
    let parallel = PARALLEL.map(|b| b.to_string()).join(",");
    let out = Command::new(bin)
        .arg("-m")
        .arg(gguf)
        .args(["-t", threads, "-tb", threads, "-c", "4096", "-ngl", "0"])
        .args(["-npp", PROMPT, "-ntg", GENERATE, "-npl", &parallel])
        .args(["--output-format", "jsonl"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        return Err(format!(
            "llama-batched-bench failed with {}:\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// The jsonl lines of llama-batched-bench (one object per PP/TG/B).
fn parse(stdout: &str) -> Result<Value, String> {
    let mut found = Map::new();
    for line in stdout.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("llama-batched-bench: {e}: {line}"))?;
        let (Some(b), Some(tg), Some(t)) = (v["pl"].as_u64(), v["tg"].as_f64(), v["t"].as_f64())
        else {
            return Err(format!("llama-batched-bench: no pl/tg/t in {line}"));
        };
        found.insert(format!("s_tg_b{b}"), v["speed_tg"].clone());
        found.insert(format!("s_pp_b{b}"), v["speed_pp"].clone());
        found.insert(format!("gen_b{b}"), Value::from(b as f64 * tg / t));
    }
    match PARALLEL
        .iter()
        .find(|b| !found.contains_key(&format!("s_tg_b{b}")))
    {
        Some(b) => Err(format!("llama-batched-bench: no B={b} row in:\n{stdout}")),
        None => Ok(Value::Object(found)),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, parse_llama_bench};

    #[test]
    fn reads_llama_bench_prompt_and_decode() {
        let out = r#"[
  {"n_prompt": 189, "n_gen": 0, "avg_ts": 301.5, "stddev_ts": 2.0},
  {"n_prompt": 0, "n_gen": 128, "avg_ts": 98.25, "stddev_ts": 1.0}
]"#;
        let v = parse_llama_bench(out).map_err(|e| e.to_string());
        assert_eq!(v.as_ref().map(|v| v["pp_tps"].as_f64()), Ok(Some(301.5)));
        assert_eq!(v.map(|v| v["tg_tps"].as_f64()), Ok(Some(98.25)));
        assert!(parse_llama_bench("[]").is_err());
        assert!(parse_llama_bench("no json").is_err());
    }

    fn row(pl: u64, speed_tg: f64) -> String {
        format!(
            r#"{{"n_kv_max": 4096, "pp": 20, "tg": 128, "pl": {pl}, "n_kv": 148, "t_pp": 0.06, "speed_pp": 329.0, "t_tg": 0.95, "speed_tg": {speed_tg}, "t": 2.0, "speed": 145.2}}"#
        )
    }

    #[test]
    fn reads_every_parallel_row() {
        let out = format!(
            "\n{}\n{}\n{}\n\n",
            row(1, 133.5),
            row(4, 166.7),
            row(8, 211.4)
        );
        let v = parse(&out).expect("three rows");
        assert_eq!(v["s_tg_b4"].as_f64(), Some(166.7));
        assert_eq!(v["s_pp_b8"].as_f64(), Some(329.0));
        assert_eq!(v["gen_b8"].as_f64(), Some(8.0 * 128.0 / 2.0));
    }

    #[test]
    fn a_missing_row_is_an_error() {
        let out = format!("{}\n{}\n", row(1, 133.5), row(4, 166.7));
        assert!(parse(&out).expect_err("no B=8").contains("B=8"));
    }
}
