//! `cargo xtask crash-test [--rounds N]`: the crash-safety test
//! (`bins/server/tests/crash.rs`) with N SIGKILLs (default 50). The test
//! itself runs 3 rounds in every `cargo test`.

use crate::{cargo, run};

/// Kills when `--rounds` is not given.
pub const DEFAULT_ROUNDS: u32 = 50;

/// Runs the crash test with `rounds` kills.
pub fn crash_test(rounds: u32) -> Result<(), String> {
    run(cargo()
        .args([
            "test",
            "--package",
            "offgrid-server",
            "--test",
            "crash",
            "--",
            "--nocapture",
        ])
        .env("OFFGRID_CRASH_ROUNDS", rounds.to_string()))
}
