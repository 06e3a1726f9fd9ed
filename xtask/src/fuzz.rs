//! `cargo xtask fuzz [--cases N] [--include-ignored]`: every property test
//! (proptest, on stable Rust) with many cases: login tokens and API keys,
//! keep-alive durations, chat templates and tokenizing, mutated GGUF
//! headers, and every HTTP request body and query string against the real
//! server. `cargo test` runs the same tests with a few cases each.
//!
//! A failing case is shrunk, printed, and its seed saved in the test's
//! `*.proptest-regressions` file beside it; commit that file so every later
//! run, CI's included, replays it first.

use crate::{cargo, run};

/// (package, test target, filter) of each property-test suite.
const SUITES: &[(&str, &str, &str)] = &[
    ("offgrid-auth", "properties", ""),
    ("offgrid-config", "properties", ""),
    ("offgrid-inference", "properties", ""),
    ("offgrid-tests", "api", "fuzz::"),
];

/// Cases per property when `--cases` is not given.
pub const DEFAULT_CASES: u32 = 256;

/// Runs every suite with `cases` cases per property; with
/// `include_ignored`, also the properties of known, not yet fixed defects.
pub fn fuzz(cases: u32, include_ignored: bool) -> Result<(), String> {
    let mut failed = Vec::new();
    for (package, target, filter) in SUITES {
        let mut cmd = cargo();
        cmd.args(["test", "--package", package, "--test", target, "--"])
            .env("PROPTEST_CASES", cases.to_string());
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        if include_ignored {
            cmd.arg("--include-ignored");
        }
        if let Err(e) = run(&mut cmd) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("property tests failed:\n  {}", failed.join("\n  ")))
    }
}
