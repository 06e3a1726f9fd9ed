//! "Secrets never logged": the integration tests write every server log
//! line and every password, token and API key they used into one folder
//! (`tests/log_capture.rs`); afterwards this scan fails if any secret
//! appears in any log.

use std::path::Path;

use aho_corasick::AhoCorasick;

/// The folder for one `cargo xtask test` run, emptied first.
pub fn fresh_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("offgrid-test-logs-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// What a scan found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Distinct secrets the tests used.
    pub secrets: usize,
    /// Log lines read.
    pub lines: usize,
}

/// Fails when any `*.secrets` entry appears in any `*.log` under `dir`, or
/// when there was nothing to check (the capture did not run).
pub fn check(dir: &Path) -> Result<Scan, String> {
    let mut secrets = std::collections::BTreeSet::new();
    let mut logs = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let text =
            || std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()));
        match path.extension().and_then(|e| e.to_str()) {
            Some("secrets") => secrets.extend(text()?.lines().map(str::to_owned)),
            Some("log") => logs.push((path.clone(), text()?)),
            _ => {}
        }
    }
    secrets.retain(|s| !s.is_empty());
    let lines: usize = logs.iter().map(|(_, t)| t.lines().count()).sum();
    if secrets.is_empty() || lines == 0 {
        return Err(format!(
            "secrets check: nothing to check in {} ({} secrets, {lines} log lines); is the log capture installed?",
            dir.display(),
            secrets.len()
        ));
    }
    let patterns: Vec<&String> = secrets.iter().collect();
    let matcher = AhoCorasick::new(&patterns).map_err(|e| e.to_string())?;
    for (path, text) in &logs {
        for (n, line) in text.lines().enumerate() {
            if let Some(m) = matcher.find(line) {
                let secret = patterns[m.pattern().as_usize()];
                let shown: String = secret.chars().take(6).collect();
                return Err(format!(
                    "secrets check: a secret ({shown}…) is in {} line {}",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    Ok(Scan {
        secrets: secrets.len(),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    #[test]
    fn a_secret_in_a_log_line_fails_the_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "1.secrets",
            "og_abcdefgh12345678\nhunter2-password\n",
        );
        write(
            dir.path(),
            "1.log",
            "INFO login ok user=alice\nDEBUG nothing here\n",
        );
        assert_eq!(
            check(dir.path()),
            Ok(Scan {
                secrets: 2,
                lines: 2
            })
        );
        write(
            dir.path(),
            "2.log",
            "DEBUG body={\"password\":\"hunter2-password\"}\n",
        );
        let err = check(dir.path()).expect_err("leak found");
        assert!(err.contains("2.log line 1"), "{err}");
        assert!(
            !err.contains("hunter2-password"),
            "the report does not repeat it"
        );
    }

    #[test]
    fn an_empty_capture_is_an_error_not_a_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(check(dir.path()).is_err());
        write(dir.path(), "1.log", "INFO started\n");
        assert!(check(dir.path()).is_err(), "no secrets recorded");
    }
}
