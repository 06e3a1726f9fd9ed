//! What the `offgrid` process tests share: running the binary with a
//! clean environment, its one-line errors, and a real server with the
//! default models.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `offgrid` with `args` in `home`, the mode variables cleared.
pub fn offgrid(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offgrid"));
    cmd.args(args).env("OFFGRID_HOME", home);
    for var in [
        "OFFGRID_CONFIG",
        "OFFGRID_MULTI_USER",
        "OFFGRID_REQUIRE_AUTH",
        "OFFGRID_GUEST_ACCESS",
        "OFFGRID_PORT",
        "OFFGRID_HOST",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run offgrid")
}

/// The one line a failure prints.
pub fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err
}

/// The installed default models.
pub fn installed_models() -> std::path::PathBuf {
    let models = std::env::var_os("OFFGRID_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".offgrid-llm"))
                .expect("HOME")
                .join("models")
        });
    assert!(
        models.join("smollm2-135m-instruct").exists(),
        "run `cargo xtask models`"
    );
    models
}

/// A real `offgrid serve` process on a free port, with the default models.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
    pub _home: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve_with_models() -> ServerProcess {
    let home = tempfile::tempdir().expect("tempdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(installed_models(), home.path().join("models")).expect("link");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_offgrid"))
        .args(["serve", "--port", &port.to_string()])
        .env("OFFGRID_HOME", home.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    // Owned from here: Drop kills and reaps it, also when we panic below.
    let server = ServerProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _home: home,
    };
    let client = reqwest::blocking::Client::new();
    for _ in 0..300 {
        let health = client.get(format!("{}/health", server.url)).send();
        if health.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("offgrid serve did not come up");
}
