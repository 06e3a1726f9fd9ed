//! Every test server's log, and every secret the tests handled, written to
//! `$OFFGRID_TEST_LOG_DIR` so `cargo xtask test` can prove afterwards that
//! no password, token or API key ever reached a log line.
//!
//! Without the variable nothing is written (a plain `cargo test`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Where this test process writes: `<dir>/<pid>.log` and `<dir>/<pid>.secrets`.
fn dir() -> Option<PathBuf> {
    std::env::var_os("OFFGRID_TEST_LOG_DIR").map(PathBuf::from)
}

fn secrets_file() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = dir()?;
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{}.secrets", std::process::id()));
        std::fs::File::create(path).ok().map(Mutex::new)
    })
    .as_ref()
}

/// Installs the process-wide log subscriber once: everything OffGrid logs
/// at trace level, other crates at debug, into `<dir>/<pid>.log`.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Some(dir) = dir() else {
            return;
        };
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let Ok(file) = std::fs::File::create(dir.join(format!("{}.log", std::process::id())))
        else {
            return;
        };
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,offgrid_http=trace,offgrid_auth=trace,offgrid_storage=trace,\
             offgrid_inference=trace,offgrid_server=trace,offgrid_config=trace",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

/// Fields whose string values are secrets, in request and response bodies.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "current_password",
    "new_password",
    "token",
    "key",
    "secret",
    "api_key",
    "setup_code",
];

/// Records every secret-looking value in `v` (recursively).
pub fn record_secrets(v: &Value) {
    let Some(file) = secrets_file() else {
        return;
    };
    let mut found = Vec::new();
    collect(v, &mut found);
    if found.is_empty() {
        return;
    }
    let mut f = file
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for s in found {
        let _ = writeln!(f, "{s}");
    }
}

/// Records one secret the tests used outside a JSON body.
pub fn record_secret(s: &str) {
    record_secrets(&serde_json::json!({ "secret": s }));
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    // Short values ("key": "a") are names, not secrets, and
                    // would match log lines by chance.
                    Value::String(s)
                        if SECRET_FIELDS.contains(&k.as_str())
                            && s.len() >= 8
                            && !s.contains('\n') =>
                    {
                        out.push(s.clone());
                    }
                    _ => collect(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}
