//! `offgrid` as a process: configuration errors, `config show|validate`,
//! `users`, and `serve` answering over HTTP.

mod common;

use std::process::Command;

use common::{installed_models, offgrid, serve_with_models, stderr_line};

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
fn single_user_mode_refuses_a_non_loopback_address_with_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    for args in [
        &["serve", "--host", "0.0.0.0", "--port", "0"][..],
        &["serve", "--host", "::", "--port", "0"][..],
    ] {
        let out = offgrid(home.path(), &[], args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let line = stderr_line(&out);
        assert!(
            line.contains("single-user") && line.contains("--allow-remote-single-user"),
            "{line}"
        );
    }
    // The setting is a boolean like the others.
    let out = offgrid(
        home.path(),
        &[("OFFGRID_ALLOW_REMOTE_SINGLE_USER", "maybe")],
        &["serve", "--host", "0.0.0.0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("OFFGRID_ALLOW_REMOTE_SINGLE_USER"));
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

#[test]
fn models_list_and_show_read_the_installed_files() {
    let home = tempfile::tempdir().expect("tempdir");
    let empty = offgrid(home.path(), &[], &["models", "list"]);
    assert!(empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stdout).contains("cargo xtask models"));

    #[cfg(unix)]
    std::os::unix::fs::symlink(installed_models(), home.path().join("models")).expect("link");
    let out = offgrid(home.path(), &[], &["models", "list", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<(String, String)> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or("").to_owned(),
                m["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("smollm2-135m-instruct".into(), "chat".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("all-minilm-l6-v2".into(), "embedding".into())),
        "{kinds:?}"
    );

    let out = offgrid(
        home.path(),
        &[],
        &["models", "show", "smollm2-135m-instruct", "--json"],
    );
    assert!(out.status.success());
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(m["architecture"], "llama");
    assert_eq!(m["quantization"], "Q4_1");
    assert!(
        m["parameters"]
            .as_u64()
            .is_some_and(|p| (130_000_000..140_000_000).contains(&p))
    );
    assert_eq!(
        m["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let bad = offgrid(home.path(), &[], &["models", "show", "../etc"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        offgrid(home.path(), &[], &["models", "show", "nope"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn models_import_and_remove_are_all_or_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let gguf = installed_models()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");

    // A truncated copy is refused with one line, and nothing is installed.
    let bytes = std::fs::read(&gguf).expect("read model");
    let half = home.path().join("half.gguf");
    std::fs::write(&half, &bytes[..bytes.len() / 3]).expect("write");
    let out = offgrid(
        home.path(),
        &[],
        &["models", "import", half.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated") && err.lines().count() == 1,
        "{err}"
    );
    let models = home.path().join("models");
    assert!(std::fs::read_dir(&models).map_or(0, |d| d.count()) == 0);

    // A name with a path separator is refused before anything is copied.
    let out = offgrid(
        home.path(),
        &[],
        &[
            "models",
            "import",
            gguf.to_str().expect("utf-8"),
            "--name",
            "a/b",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid model name"));

    let out = offgrid(
        home.path(),
        &[],
        &[
            "models",
            "import",
            gguf.to_str().expect("utf-8"),
            "--name",
            "tiny",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(m["id"], "tiny");
    assert_eq!(
        m["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let list = offgrid(home.path(), &[], &["models", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("tiny"));

    let out = offgrid(home.path(), &[], &["models", "remove", "tiny"]);
    assert!(out.status.success());
    assert!(!models.join("tiny").exists());
    let out = offgrid(home.path(), &[], &["models", "remove", "tiny"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_and_chat_stream_answers_from_a_running_server() {
    use std::io::Write;
    let server = serve_with_models();
    let home = tempfile::tempdir().expect("tempdir");
    let out = offgrid(
        home.path(),
        &[],
        &[
            "run",
            "smollm2-135m-instruct",
            "Explain what a CPU does in one sentence.",
            "--url",
            &server.url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());

    let mut chat = Command::new(env!("CARGO_BIN_EXE_offgrid"))
        .args(["chat", "--url", &server.url])
        .env("OFFGRID_HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn chat");
    chat.stdin
        .take()
        .expect("stdin")
        .write_all(b"Hi there\nWhat is 2 + 2?\n/exit\n")
        .expect("write");
    let out = chat.wait_with_output().expect("chat");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "{text}"
    );

    let unknown = offgrid(
        home.path(),
        &[],
        &["run", "no-such-model", "hi", "--url", &server.url],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr_line(&unknown).contains("404"));
    let dead = offgrid(
        home.path(),
        &[],
        &["run", "x", "hi", "--url", "http://127.0.0.1:9"],
    );
    assert_eq!(dead.status.code(), Some(1));
    assert!(stderr_line(&dead).contains("cannot reach"));
}

/// A loopback port nothing listens on.
fn unused_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port().to_string()
}

#[test]
fn run_falls_back_to_an_in_process_engine_when_no_server_answers() {
    let home = tempfile::tempdir().expect("tempdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(installed_models(), home.path().join("models")).expect("link");
    let port = unused_port();
    let out = offgrid(
        home.path(),
        &[("OFFGRID_PORT", port.as_str())],
        &[
            "run",
            "smollm2-135m-instruct",
            "What is the capital of France? Answer in one word.",
            "--temperature",
            "0",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("in this process"));
    // llama.cpp's greedy answer to this prompt names Paris.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Paris"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An unknown model without a server: one line, exit 1.
    let out = offgrid(
        home.path(),
        &[("OFFGRID_PORT", port.as_str())],
        &["run", "no-such-model", "hi"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("no-such-model"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_an_in_process_generation() {
    use std::io::Read;
    let home = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(installed_models(), home.path().join("models")).expect("link");
    let mut child = Command::new(env!("CARGO_BIN_EXE_offgrid"))
        .args([
            "run",
            "smollm2-135m-instruct",
            "Write a very long story about a dragon who learns to bake bread.",
        ])
        .env("OFFGRID_HOME", home.path())
        .env("OFFGRID_PORT", unused_port())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    let mut stdout = child.stdout.take().expect("stdout");
    // Wait until the answer has started streaming.
    let mut first = [0u8; 16];
    let n = stdout.read(&mut first).expect("read");
    assert!(n > 0, "no output before Ctrl-C");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // The generation stops and the program exits on its own (no kill).
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).expect("read rest");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    // Left alone, this story runs to about 3 KB; stopped, only the tokens
    // already under way follow.
    assert!(rest.len() < 600, "{} more bytes after Ctrl-C", rest.len());
}

#[test]
fn session_list_show_export_and_delete_through_a_running_server() {
    let server = serve_with_models();
    let client = reqwest::blocking::Client::new();
    let made: serde_json::Value = client
        .post(format!("{}/v1/sessions", server.url))
        .json(&serde_json::json!({"title": "Trip plans"}))
        .send()
        .and_then(|r| r.json())
        .expect("create");
    let id = made["id"].as_str().expect("id").to_owned();
    let said = client
        .post(format!("{}/v1/sessions/{id}/messages", server.url))
        .json(&serde_json::json!({"role": "user", "content": "Pack the tent."}))
        .send()
        .expect("message");
    assert_eq!(said.status(), 201);
    let home = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--url", server.url.as_str()]);
        offgrid(home.path(), &[], &all)
    };
    let out = cli(&["session", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["message_count"], 1);
    let text = cli(&["session", "list", "-q", "trip"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Trip plans"));

    let out = cli(&["session", "show", &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Pack the tent."));
    let file = home.path().join("trip.md");
    let out = cli(&["session", "export", &id, "-o", file.to_str().expect("utf8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&file).expect("exported");
    assert!(
        md.contains("# Trip plans") && md.contains("Pack the tent."),
        "{md}"
    );
    // An existing file is never overwritten.
    let out = cli(&["session", "export", &id, "-o", file.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let json = cli(&["session", "export", &id, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json export");
    assert_eq!(doc["title"], "Trip plans");

    let out = cli(&["session", "delete", &id]);
    assert!(out.status.success());
    let out = cli(&["session", "show", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("not found"));
    let out = cli(&["session", "show", "../../v1/users"]);
    assert_eq!(out.status.code(), Some(1));
    // No server: one line, exit 1.
    let out = offgrid(
        home.path(),
        &[],
        &[
            "session",
            "list",
            "--url",
            &format!("http://127.0.0.1:{}", unused_port()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("offgrid serve"));
}
