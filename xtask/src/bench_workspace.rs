//! `cargo xtask bench workspace`: the per-user workspace at scale, from
//! `crates/workspace/examples/bench_workspace.rs` (release build) on a
//! real SQLite file with 1,000 users × 100 chat sessions: listing one
//! user's sessions through the service (owner, share and admin filters
//! included) beside the same page read by a plain indexed query without
//! any filter, in one run. Prints the JSON and a Markdown table for
//! docs/PERFORMANCE.md.

use std::process::Command;

use serde_json::Value;

use crate::bench::target_dir;
use crate::{cargo, run};

/// `cargo xtask bench workspace`.
pub fn workspace() -> Result<(), String> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "offgrid-workspace",
        "--example",
        "bench_workspace",
    ]))?;
    let bin = target_dir()
        .join("release")
        .join("examples")
        .join("bench_workspace");
    eprintln!("xtask: bench workspace: 1,000 users × 100 sessions (populating takes a while)");
    let out = Command::new(&bin)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "bench_workspace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let r: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("bench_workspace printed no JSON: {e}"))?;
    println!("{r}");
    let ms = |k: &str, p: &str| r[k][p].as_f64().unwrap_or(f64::NAN);
    println!(
        "\n## cargo xtask bench workspace ({} users × {} sessions, {} samples, {} cores)\n",
        r["users"],
        r["sessions_per_user"],
        r["samples"],
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("| Listing one user's sessions (page of 50) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!(
        "| `Workspace::list_sessions` (filters, pool, mapping) | {:.3} | {:.3} |",
        ms("list_own_sessions", "p50_ms"),
        ms("list_own_sessions", "p99_ms")
    );
    println!(
        "| Plain indexed query, no filter (peer) | {:.3} | {:.3} |",
        ms("plain_query_same_page", "p50_ms"),
        ms("plain_query_same_page", "p99_ms")
    );
    println!(
        "\nService / plain p50 ratio: {:.2}. Populating took {:.1} s.",
        r["filter_overhead_p50_ratio"].as_f64().unwrap_or(f64::NAN),
        r["populate_s"].as_f64().unwrap_or(f64::NAN)
    );
    Ok(())
}
