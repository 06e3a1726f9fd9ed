//! `cargo xtask bench constrained`: what structured outputs cost, from
//! `crates/inference/examples/constrained.rs` (release build) on the
//! default model: indexing the vocabulary, compiling a schema, and decode
//! speed with the JSON-schema mask beside the same decoding without it in
//! one run (alternating rounds, medians), with the mask's own time per
//! token. Prints the JSON and a Markdown table for docs/PERFORMANCE.md.

use std::process::Command;

use serde_json::Value;

use crate::bench::target_dir;
use crate::{cargo, run};

/// `cargo xtask bench constrained`.
pub fn constrained() -> Result<(), String> {
    crate::models::install(None)?;
    let gguf = crate::models::home_dir()?
        .join("models")
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "offgrid-inference",
        "--example",
        "constrained",
    ]))?;
    let bin = target_dir()
        .join("release")
        .join("examples")
        .join("constrained");
    let out = Command::new(&bin)
        .arg(&gguf)
        .args(["--gen", "200", "--repeat", "5"])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "constrained failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let r: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("constrained printed no JSON: {e}"))?;
    println!("{r}");
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "\n## cargo xtask bench constrained (SmolLM2-135M Q4_1, {} tokens, median of {}, {} cores)\n",
        r["generate"],
        r["repeat"],
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("| | figure |\n|---|---|");
    println!(
        "| vocabulary index (once per loaded model) | {:.0} ms |",
        f("vocabulary_index_ms")
    );
    println!(
        "| schema compile (per request) | {:.2} ms |",
        f("schema_compile_ms")
    );
    println!(
        "| decode, unconstrained | {:.1} tokens/s |",
        f("unconstrained_decode_tps")
    );
    println!(
        "| decode, JSON schema | {:.1} tokens/s ({:.2}x) |",
        f("constrained_decode_tps"),
        f("ratio")
    );
    println!("| mask per token | {:.0} µs |", f("mask_us_per_token"));
    Ok(())
}
