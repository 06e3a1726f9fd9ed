//! `cargo xtask schemathesis [--max-examples N]`: schema-driven fuzzing of
//! the real server against its own `/openapi.json`, once per role.
//!
//! The debug `offgrid` binary runs in multi-user mode on a free loopback
//! port with a temporary `OFFGRID_HOME` (the default models linked in, bcrypt
//! cost 4). An administrator is set up over `POST /v1/auth/setup` (loopback),
//! a User and a Viewer are created, and schemathesis (from PyPI, in a venv
//! under the cache directory) runs as Guest (no credentials), Viewer, User
//! and, last, Admin, with that role's API key. API keys, not login tokens:
//! a generated `POST /v1/auth/logout` would end a token in use, while with
//! a key it revokes nothing. Admin runs last so that whatever its
//! operations change cannot disturb the other roles' runs.
//!
//! Checks: no 5xx, responses, status codes and content types as
//! documented, negative (schema-violating) data rejected, and no operation
//! that requires credentials answers without them (`ignored_auth`).
//! `xtask/src/schemathesis_hooks.py` keeps completions short.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::bench::{TempHome, curl, free_port, target_dir};
use crate::{cargo, run};

/// The schemathesis release the run is pinned to.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Examples per operation and phase in `cargo xtask test`.
pub(crate) const CI_MAX_EXAMPLES: u32 = 5;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,negative_data_rejection,ignored_auth";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's `schemathesis`, installed on first use.
fn schemathesis_bin() -> Result<PathBuf, String> {
    let venv = crate::models::cache_dir()?.join("venv");
    let bin = venv.join("bin").join("schemathesis");
    let pinned = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("4.32.5"));
    if !pinned {
        if !venv.join("bin").join("pip").exists() {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        }
        run(Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ]))?;
    }
    Ok(bin)
}

/// A models folder of real directories whose files link to the installed
/// default models, so nothing the run does can remove the originals.
fn link_models(home: &Path) -> Result<(), String> {
    let installed = crate::models::home_dir()?.join("models");
    let models = home.join("models");
    let entries = std::fs::read_dir(&installed)
        .map_err(|e| format!("{}: {e} (run `cargo xtask models`)", installed.display()))?;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let dest = models.join(entry.file_name());
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        for file in std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let target = file.path().canonicalize().map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(&target, dest.join(file.file_name()))
                .map_err(|e| format!("link {}: {e}", target.display()))?;
        }
    }
    Ok(())
}

fn start(bin: &Path, home: &Path) -> Result<Server, String> {
    let port = free_port()?;
    let log = home.join("server.log");
    let out = File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(bin.join("offgrid"))
        .args(["serve", "--multi-user", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .env("OFFGRID_HOME", home)
        .env("OFFGRID_BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("start offgrid: {e}"))?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if curl(&["-f", &format!("{}/health", server.base)]).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the server did not start".to_owned())
}

/// Pulls `"field":"value"` out of a JSON answer.
fn field(text: &str, name: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{e}: {text}"))?;
    let mut v = &value;
    for part in name.split('.') {
        v = &v[part];
    }
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in {text}"))
}

fn post(base: &str, path: &str, auth: Option<&str>, body: &str) -> Result<String, String> {
    let header = auth.map(|a| format!("Authorization: Bearer {a}"));
    let mut args = vec!["-f", "-H", "content-type: application/json", "-d", body];
    if let Some(h) = &header {
        args.extend(["-H", h.as_str()]);
    }
    let url = format!("{base}{path}");
    args.push(&url);
    curl(&args)
}

/// The admin's and a new User's and Viewer's API keys (each may create
/// keys, so key creation is exercised too).
fn credentials(base: &str) -> Result<Vec<(&'static str, Option<String>)>, String> {
    let password = "schemathesis-admin-pw-1";
    post(
        base,
        "/v1/auth/setup",
        None,
        &format!(r#"{{"username":"admin","password":"{password}"}}"#),
    )?;
    let login = post(
        base,
        "/v1/auth/login",
        None,
        &format!(r#"{{"username":"admin","password":"{password}"}}"#),
    )?;
    let token = field(&login, "token")?;
    let key_body = r#"{"name":"schemathesis","can_create_keys":true}"#;
    let admin_key = field(
        &post(base, "/v1/users/me/api-keys", Some(&token), key_body)?,
        "key",
    )?;
    let mut keys = vec![("Guest", None)];
    for (role, name) in [("Viewer", "viewer"), ("User", "user")] {
        let created = post(
            base,
            "/v1/users",
            Some(&token),
            &format!(
                r#"{{"username":"st-{name}","password":"schemathesis-{name}-pw-1","role":"{name}","create_api_key":false}}"#
            ),
        )?;
        let id = field(&created, "user.id")?;
        let key = field(
            &post(
                base,
                &format!("/v1/users/{id}/api-keys"),
                Some(&token),
                key_body,
            )?,
            "key",
        )?;
        keys.push((role, Some(key)));
    }
    keys.push(("Admin", Some(admin_key)));
    Ok(keys)
}

/// `cargo xtask schemathesis [--max-examples N]`.
pub fn schemathesis(max_examples: u32) -> Result<(), String> {
    let started = Instant::now();
    crate::models::install(None)?;
    let st = schemathesis_bin()?;
    run(cargo().args(["build", "--bin", "offgrid"]))?;
    let bin = target_dir().join("debug");
    let home = TempHome::new("schemathesis")?;
    link_models(&home.0)?;
    let server = start(&bin, &home.0)?;
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut failed = Vec::new();
    for (role, key) in credentials(&server.base)? {
        eprintln!("xtask: schemathesis as {role}");
        let mut cmd = Command::new(&st);
        cmd.arg("run")
            .arg(format!("{}/openapi.json", server.base))
            .args(["--checks", CHECKS])
            .args(["--mode", "all"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", &max_examples.to_string()])
            .args(["--request-timeout", "60"])
            .args(["--seed", "1"])
            // One worker: with two, hypothesis' shared caches raced now and
            // then (a KeyError inside schemathesis, reported as an error).
            .args(["--workers", "1"])
            .args(["--suppress-health-check", "all"])
            .args(["--report", "junit"])
            .arg("--report-dir")
            .arg(home.0.join(format!("report-{role}")))
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", &hooks)
            .env("NO_COLOR", "1")
            // Its cache (.schemathesis/) goes to the temporary home.
            .current_dir(&home.0);
        if let Some(key) = &key {
            cmd.args(["-H", &format!("Authorization: Bearer {key}")]);
        }
        if run(&mut cmd).is_err() {
            failed.push(role);
        }
    }
    drop(server);
    eprintln!(
        "xtask: schemathesis done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        let log = std::fs::read_to_string(home.0.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("xtask: server log (last lines):");
        for line in tail.into_iter().rev() {
            eprintln!("  {line}");
        }
        Err(format!("schemathesis found failures as {failed:?}"))
    }
}

/// `[--max-examples N]`.
pub fn from_args(args: &[&str]) -> Result<(), String> {
    match args {
        [] => schemathesis(CI_MAX_EXAMPLES),
        ["--max-examples", n] => schemathesis(
            n.parse()
                .map_err(|_| format!("--max-examples: not a number: {n}"))?,
        ),
        _ => Err("usage: cargo xtask schemathesis [--max-examples N]".to_owned()),
    }
}
