//! `cargo xtask tools`: installs the Python packages the tests drive, each
//! pinned, into a venv under the cache directory, so that no test installs
//! anything and every test run after it is offline. Today that is the
//! official `openai` client, for `tests/api/openai_client.rs`, in
//! `~/.cache/offgrid/openai-venv`. A no-op when the pinned version is
//! there. `cargo xtask test` runs it before the tests.

use std::path::PathBuf;
use std::process::Command;

use crate::run;

/// The `openai` release the client test runs.
const OPENAI: &str = "3.54.0";

/// The venv `tests/api/openai_client.rs` looks for.
fn openai_venv() -> Result<PathBuf, String> {
    Ok(crate::models::cache_dir()?.join("openai-venv"))
}

/// Installs `openai==OPENAI` into its venv unless it is there already.
pub(crate) fn install() -> Result<(), String> {
    let venv = openai_venv()?;
    let python = venv.join("bin").join("python");
    let installed = Command::new(&python)
        .args(["-c", "import openai; print(openai.__version__)"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == OPENAI);
    if installed {
        eprintln!(
            "xtask: openai {OPENAI} already installed in {}",
            venv.display()
        );
        return Ok(());
    }
    if !python.exists() {
        run(Command::new(crate::models::python())
            .args(["-m", "venv"])
            .arg(&venv))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("openai=={OPENAI}"),
    ]))?;
    eprintln!("xtask: installed openai {OPENAI} in {}", venv.display());
    Ok(())
}
