//! `cargo xtask tools`: installs the Python packages the tests drive, each
//! pinned, into a venv under the cache directory, so that no test installs
//! anything and every test run after it is offline. Today those are the
//! official `openai` and `ollama` clients, for
//! `tests/api/openai_client.rs` and `tests/api/ollama_client.rs`, and
//! `prometheus-client`, whose parser reads `/metrics` in
//! `tests/api/metrics.rs`, in
//! `~/.cache/offgrid/openai-venv`. A no-op when the pinned versions are
//! there. `cargo xtask test` runs it before the tests.

use std::path::PathBuf;
use std::process::Command;

use crate::run;

/// The `openai` release the client test runs.
const OPENAI: &str = "3.54.0";
/// The `ollama` release the client test runs.
const OLLAMA: &str = "0.6.3";
/// The `prometheus-client` release whose OpenMetrics parser reads
/// `/metrics` in `tests/api/metrics.rs`.
const PROMETHEUS: &str = "0.26.0";

/// The venv `tests/api/openai_client.rs` looks for.
fn openai_venv() -> Result<PathBuf, String> {
    Ok(crate::models::cache_dir()?.join("openai-venv"))
}

/// Installs `openai==OPENAI` and `ollama==OLLAMA` into the venv unless
/// they are there already.
pub(crate) fn install() -> Result<(), String> {
    let venv = openai_venv()?;
    let python = venv.join("bin").join("python");
    let versions =
        "import importlib.metadata as m; print(m.version('openai'), m.version('ollama'))";
    let installed = Command::new(&python)
        .args(["-c", versions])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim()
                    == format!("{OPENAI} {OLLAMA} {PROMETHEUS}")
        });
    if installed {
        eprintln!(
            "xtask: openai {OPENAI}, ollama {OLLAMA} and prometheus-client {PROMETHEUS} already installed in {}",
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
        &format!("ollama=={OLLAMA}"),
        &format!("prometheus-client=={PROMETHEUS}"),
    ]))?;
    eprintln!(
        "xtask: installed openai {OPENAI}, ollama {OLLAMA} and prometheus-client {PROMETHEUS} in {}",
        venv.display()
    );
    Ok(())
}
