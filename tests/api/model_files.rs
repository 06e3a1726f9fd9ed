//! Model files as an attacker would use them: HTTP imports confined to the
//! model import directory (symlinks and `..` resolved, one answer for
//! every refusal), imports and removals in the audit log, load failures
//! that do not show server paths or candle's messages, and crafted GGUF
//! files in the models folder that neither stop the server nor a thread.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_error, body, models_dir, spawn_app, spawn_with_private_models,
};

const CHAT: &str = "smollm2-135m-instruct";

fn installed_gguf() -> PathBuf {
    models_dir()
        .join(CHAT)
        .join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// A hard link (or copy) of the installed GGUF at `target`; never written.
fn link_model(target: &Path) {
    if std::fs::hard_link(installed_gguf(), target).is_err() {
        std::fs::copy(installed_gguf(), target).expect("copy model");
    }
}

fn import(app: &TestApp, admin: &str, path: &str) -> reqwest::blocking::Response {
    app.post(
        "/v1/models",
        Some(admin),
        json!({"path": path, "name": "imported"}),
    )
}

/// The refusal's message with the given path taken out: identical for
/// every kind of refusal, so nothing is learnt about the disk.
fn refusal(app: &TestApp, admin: &str, path: &str) -> String {
    let b = assert_error(import(app, admin, path), 400, "invalid_path");
    let message = b["error"]["message"].as_str().expect("message").to_owned();
    assert!(
        !message.contains(&app.home.path().display().to_string()),
        "{message}"
    );
    message.replace(&format!("{path:?}"), "<path>")
}

#[cfg(unix)]
#[test]
fn http_imports_come_only_from_the_import_directory() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let app = spawn_with_private_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let import_dir = app.home.path().join("import");
    let mode = std::fs::metadata(&import_dir)
        .expect("the default import directory is created at start")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // Outside the directory, missing, traversing out, a symlink out, a
    // folder with a symlink out: all the same answer.
    let outside = installed_gguf().display().to_string();
    symlink(installed_gguf(), import_dir.join("link-out.gguf")).expect("symlink");
    std::fs::create_dir(import_dir.join("folder")).expect("folder");
    symlink(
        models_dir().join("all-minilm-l6-v2/config.json"),
        import_dir.join("folder/config.json"),
    )
    .expect("symlink");
    let answers: Vec<String> = [
        outside.as_str(),
        "/nonexistent/file.gguf",
        "missing.gguf",
        "../models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
        "link-out.gguf",
        "folder",
        "/etc/passwd",
        "",
    ]
    .iter()
    .map(|p| refusal(&app, &admin, p))
    .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    assert!(!answers[0].contains("exist"), "{}", answers[0]);

    // Inside: by relative or absolute path, and through a symlink that
    // stays inside; the default id comes from the name given.
    link_model(&import_dir.join("mine.gguf"));
    symlink(import_dir.join("mine.gguf"), import_dir.join("alias.gguf")).expect("symlink");
    let res = app.post("/v1/models", Some(&admin), json!({"path": "alias.gguf"}));
    assert_eq!(res.status(), 201);
    assert_eq!(body(res)["id"], "alias");
    let absolute = import_dir.join("mine.gguf").display().to_string();
    assert_eq!(import(&app, &admin, &absolute).status(), 201);

    // The local operator's CLI still imports from anywhere (see the CLI
    // tests); the HTTP API refuses when the directory is gone.
    std::fs::remove_dir_all(&import_dir).expect("remove import dir");
    assert_error(
        import(&app, &admin, "mine.gguf"),
        400,
        "import_dir_unavailable",
    );
}

#[test]
fn model_imports_refusals_and_removals_are_audited() {
    let app = spawn_with_private_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    link_model(&app.home.path().join("import/mine.gguf"));
    assert_eq!(import(&app, &admin, "mine.gguf").status(), 201);
    assert_error(import(&app, &admin, "/etc/passwd"), 400, "invalid_path");
    assert_eq!(
        app.delete("/v1/models/imported", Some(&admin)).status(),
        200
    );

    let log = body(app.get("/v1/audit?action=model.", Some(&admin)));
    let events: Vec<&Value> = log["data"].as_array().expect("data").iter().collect();
    let find = |action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {log}"))
    };
    let imported = find("model.imported");
    assert_eq!(imported["target"], "imported");
    assert_eq!(imported["actor"], crate::helpers::ADMIN);
    assert_eq!(imported["client_addr"], "127.0.0.1");
    let details: Value =
        serde_json::from_str(imported["details"].as_str().expect("details")).expect("json");
    assert_eq!(details["path"], "mine.gguf");
    assert_eq!(details["sha256"].as_str().map(str::len), Some(64));
    let refused = find("model.import_refused");
    assert!(
        refused["details"]
            .as_str()
            .is_some_and(|d| d.contains("/etc/passwd") && d.contains("invalid_path")),
        "{refused}"
    );
    let deleted = find("model.deleted");
    assert_eq!(deleted["target"], "imported");
    assert_eq!(deleted["actor"], crate::helpers::ADMIN);
}

#[test]
fn import_errors_name_only_the_given_path() {
    let app = spawn_with_private_models(|s| s.multi_user_mode = true);
    let admin = app.setup_admin();
    let dir = app.home.path().join("import");
    // Valid magic, absurd header: refused by what is wrong with it, said
    // about the name the admin gave.
    let mut crafted = b"GGUF".to_vec();
    crafted.extend_from_slice(&3u32.to_le_bytes());
    crafted.extend_from_slice(&u64::MAX.to_le_bytes());
    crafted.extend_from_slice(&0u64.to_le_bytes());
    std::fs::write(dir.join("crafted.gguf"), crafted).expect("write");
    let b = assert_error(import(&app, &admin, "crafted.gguf"), 400, "invalid_model");
    let message = b["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("crafted.gguf cannot be imported"),
        "{message}"
    );
    assert!(
        !message.contains(&app.home.path().display().to_string()),
        "{message}"
    );
}

/// A model whose manifest still matches but whose file was damaged in
/// place (same size) after it was listed: the chat caller gets a generic
/// 500, the path and the parser's complaint stay in the log.
#[test]
fn a_model_that_fails_to_load_shows_no_server_details() {
    let app = spawn_app(|s| {
        let folder = s.home.join("models/damaged");
        std::fs::create_dir_all(&folder).expect("model folder");
        std::fs::copy(installed_gguf(), folder.join("model.gguf")).expect("copy model");
    });
    assert_eq!(body(app.get("/v1/models/damaged", None))["id"], "damaged");
    // Damage the header without changing the size.
    let file = app.home.path().join("models/damaged/model.gguf");
    let mut bytes = std::fs::read(&file).expect("read copy");
    bytes[0..4].copy_from_slice(b"XXXX");
    std::fs::write(&file, bytes).expect("damage copy");

    let res = app.post(
        "/v1/chat/completions",
        None,
        json!({"model": "damaged", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}),
    );
    let b = assert_error(res, 500, "model_load_failed");
    let message = b["error"]["message"].as_str().expect("message");
    assert_eq!(
        message,
        "The model could not be loaded; the server log has details"
    );
    assert_eq!(b["error"]["type"], "server_error");
    // The server carries on.
    assert_eq!(app.get("/v1/models", None).status(), 200);
}

/// The GGUF that made candle divide by zero (`general.alignment = 0`),
/// dropped into the models folder: the server starts, lists it nowhere,
/// and keeps serving while the reaper rescans.
#[test]
fn a_crafted_gguf_in_the_models_folder_neither_stops_the_server_nor_a_thread() {
    let app = spawn_app(|s| {
        let mut bytes = std::fs::read(installed_gguf()).expect("read model");
        let key = b"llama.block_count";
        let at = bytes
            .windows(key.len())
            .position(|w| w == key)
            .expect("key present");
        bytes[at..at + key.len()].copy_from_slice(b"general.alignment");
        bytes[at + key.len() + 4..at + key.len() + 8].copy_from_slice(&0u32.to_le_bytes());
        let folder = s.home.join("models/crafted");
        std::fs::create_dir_all(&folder).expect("model folder");
        std::fs::write(folder.join("model.gguf"), bytes).expect("write crafted");
    });
    let list = body(app.get("/v1/models", None));
    assert_eq!(list["data"], json!([]), "{list}");
    assert_error(
        app.post(
            "/v1/chat/completions",
            None,
            json!({"model": "crafted", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        404,
        "model_not_found",
    );
    // A second crafted folder appears while serving: the rescan (on the
    // reaper thread) survives it and still notices a valid model after.
    let second = app.home.path().join("models/crafted-2");
    std::fs::create_dir_all(&second).expect("folder");
    std::fs::copy(
        app.home.path().join("models/crafted/model.gguf"),
        second.join("model.gguf"),
    )
    .expect("copy crafted");
    let good = app.home.path().join("models/good");
    std::fs::create_dir_all(&good).expect("folder");
    link_model(&good.join("model.gguf"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = body(app.get("/v1/models", None));
        if list["data"].as_array().is_some_and(|d| d.len() == 1) {
            assert_eq!(list["data"][0]["id"], "good");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rescan never listed the good model: {list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
