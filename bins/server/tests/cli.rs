//! `offgrid` as a process: configuration errors, `config show|validate`,
//! `users`, and `serve` answering over HTTP.

use std::path::Path;
use std::process::{Command, Output};

fn offgrid(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
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

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err
}

#[test]
fn bad_values_stop_start_up_with_exit_2_and_one_line() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = offgrid(home.path(), &[("OFFGRID_PORT", "abc")], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_line(&out);
    assert!(
        line.contains("port") && line.contains("OFFGRID_PORT") && line.contains("integer"),
        "{line}"
    );

    std::fs::write(home.path().join("config.yaml"), "multi_user_mode: maybe\n").expect("write");
    let out = offgrid(home.path(), &[], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_line(&out);
    assert!(
        line.contains("multi_user_mode")
            && line.contains("config.yaml")
            && line.contains("true or false"),
        "{line}"
    );

    std::fs::write(home.path().join("config.yaml"), "colour: blue\n").expect("write");
    let out = offgrid(home.path(), &[], &["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("unknown key `colour`"));

    std::fs::write(home.path().join("config.yaml"), "port: [1\n").expect("write");
    assert_eq!(
        offgrid(home.path(), &[], &["config", "show"]).status.code(),
        Some(2)
    );

    let out = offgrid(home.path(), &[], &["serve", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    stderr_line(&out);
}

#[test]
fn config_show_names_each_source() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.yaml"),
        "multi_user_mode: true\nport: 9000\n",
    )
    .expect("write");
    let out = offgrid(
        home.path(),
        &[("OFFGRID_PORT", "9001")],
        &["config", "show", "--json"],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["port"]["value"], "9001");
    assert_eq!(v["port"]["source"], "environment variable OFFGRID_PORT");
    assert_eq!(v["multi_user_mode"]["value"], "true");
    assert!(
        v["multi_user_mode"]["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("file "))
    );
    assert_eq!(v["guest_access"]["source"], "default");
}

#[test]
fn config_validate_checks_a_file() {
    let home = tempfile::tempdir().expect("tempdir");
    let good = home.path().join("good.yaml");
    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &good,
        "require_auth: true\ncors_origins: [\"http://localhost:3000\"]\n",
    )
    .expect("write");
    std::fs::write(&bad, "bcrypt_cost: 99\n").expect("write");
    assert!(
        offgrid(
            home.path(),
            &[],
            &["config", "validate", good.to_str().expect("utf8")]
        )
        .status
        .success()
    );
    let out = offgrid(
        home.path(),
        &[],
        &["config", "validate", bad.to_str().expect("utf8")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("bcrypt_cost"));
}

#[test]
fn users_in_single_user_mode_explains_and_exits_0() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = offgrid(home.path(), &[], &["users"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("User management is disabled in single-user mode")
    );
    let out = offgrid(
        home.path(),
        &[("OFFGRID_MULTI_USER", "true")],
        &["users", "--json"],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total"], 0);
}
