//! Where the real models are: `$OFFGRID_MODELS_DIR`, else
//! `$OFFGRID_HOME/models`, else `~/.offgrid-llm/models` (where
//! `cargo xtask models` installs them).

use std::path::PathBuf;

/// The installed models' directory.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OFFGRID_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("OFFGRID_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".offgrid-llm")))
        .expect("HOME or OFFGRID_HOME")
        .join("models")
}

/// A file or folder under the models directory, which must exist.
pub fn installed(relative: &str) -> PathBuf {
    let path = models_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask models` (cargo xtask test does)",
        path.display()
    );
    path
}
