//! `offgrid-admin` as a process, alone and beside a running server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use offgrid_tests::{password_of, spawn_multi_user};
use serde_json::Value;

fn admin(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_offgrid-admin"))
        .args(args)
        .env("OFFGRID_HOME", home)
        .env("OFFGRID_BCRYPT_COST", "4")
        .env_remove("OFFGRID_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn offgrid-admin");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn one_line_error(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("offgrid-admin: "), "{err}");
    err
}

#[test]
fn setup_users_keys_and_audit_without_a_server() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let created = ok_json(admin(
        h,
        &["--json", "setup", "root", "--password-stdin"],
        Some("root-password-1\n"),
    ));
    assert_eq!(created["user"]["role"], "admin");
    let again = admin(
        h,
        &["setup", "other", "--password-stdin"],
        Some("root-password-1\n"),
    );
    one_line_error(&again, 1);

    let alice = ok_json(admin(
        h,
        &[
            "--json",
            "users",
            "create",
            "alice",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("alice-password-1\n"),
    ));
    assert!(
        alice["api_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("og_"))
    );
    let list = ok_json(admin(h, &["--json", "users", "list"], None));
    assert_eq!(list["total"], 2);
    let shown = ok_json(admin(h, &["--json", "users", "show", "ALICE"], None));
    assert_eq!(shown["user"]["role"], "viewer");
    assert_eq!(shown["api_keys"].as_array().map(Vec::len), Some(1));

    let role = ok_json(admin(
        h,
        &["--json", "users", "set-role", "alice", "user"],
        None,
    ));
    assert_eq!(role["user"]["role"], "user");
    let disabled = ok_json(admin(h, &["--json", "users", "disable", "alice"], None));
    assert_eq!(disabled["user"]["disabled"], true);
    let enabled = ok_json(admin(h, &["--json", "users", "enable", "alice"], None));
    assert_eq!(enabled["user"]["disabled"], false);
    ok_json(admin(
        h,
        &[
            "--json",
            "users",
            "reset-password",
            "alice",
            "--password-stdin",
        ],
        Some("another-password\n"),
    ));

    let key = ok_json(admin(
        h,
        &[
            "--json",
            "keys",
            "create",
            "alice",
            "--name",
            "ci",
            "--expires-in-days",
            "5",
        ],
        None,
    ));
    let key_id = key["api_key"]["id"].as_str().expect("id").to_owned();
    let keys = ok_json(admin(h, &["--json", "keys", "list", "alice"], None));
    assert!(
        keys["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|k| k["id"] == key_id.as_str())
    );
    let revoked = ok_json(admin(
        h,
        &["--json", "keys", "revoke", "alice", &key_id],
        None,
    ));
    assert!(revoked["api_key"]["revoked_at"].is_string());

    let last_admin = admin(h, &["users", "delete", "root"], None);
    assert!(one_line_error(&last_admin, 1).contains("last active administrator"));
    ok_json(admin(h, &["--json", "users", "delete", "alice"], None));

    let audit = ok_json(admin(h, &["--json", "audit", "--action", "user."], None));
    let actions: Vec<_> = audit["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"user.created") && actions.contains(&"user.deleted"),
        "{actions:?}"
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line_and_passwords_never_come_from_argv() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    one_line_error(&admin(h, &["users", "frobnicate"], None), 2);
    one_line_error(
        &admin(h, &["users", "create", "bob", "--role", "root"], None),
        2,
    );
    one_line_error(
        &admin(
            h,
            &["users", "create", "bob", "--password", "hunter22"],
            None,
        ),
        2,
    );
    let no_tty = admin(h, &["users", "create", "bob"], None);
    assert!(one_line_error(&no_tty, 2).contains("--password-stdin"));
    let short = admin(
        h,
        &["users", "create", "bob", "--password-stdin"],
        Some("short\n"),
    );
    assert!(one_line_error(&short, 2).contains("password"));
    let missing = admin(h, &["users", "show", "nobody"], None);
    one_line_error(&missing, 1);
}

#[test]
fn db_commands_migrate_report_and_back_up() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let migrated = ok_json(admin(h, &["--json", "db", "migrate"], None));
    assert!(migrated["applied"].as_array().is_some_and(|a| a.len() >= 3));
    let again = ok_json(admin(h, &["--json", "db", "migrate"], None));
    assert_eq!(again["applied"].as_array().map(Vec::len), Some(0));
    let status = ok_json(admin(h, &["--json", "db", "status"], None));
    assert!(
        status["migrations"]
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["applied"] == true)
    );
    let dest = h.join("copy.db");
    ok_json(admin(
        h,
        &["--json", "db", "backup", dest.to_str().expect("utf8")],
        None,
    ));
    assert!(dest.exists());
    one_line_error(
        &admin(h, &["db", "backup", dest.to_str().expect("utf8")], None),
        1,
    );
}

#[test]
fn works_beside_a_running_server_and_revokes_on_the_next_request() {
    let app = spawn_multi_user();
    let h = app.home.path().to_owned();
    let admin_token = app.setup_admin();
    let (_, key) = app.create_user(&admin_token, "alice", "user");
    let token = app.token("alice", &password_of("alice"));
    assert_eq!(app.get("/v1/users/me", Some(&token)).status(), 200);

    ok_json(admin(&h, &["--json", "users", "disable", "alice"], None));
    assert_eq!(app.get("/v1/users/me", Some(&token)).status(), 401);
    assert_eq!(app.get("/v1/users/me", Some(&key)).status(), 401);

    // Users created by the CLI can log in to the running server.
    ok_json(admin(
        &h,
        &["--json", "users", "create", "bob", "--password-stdin"],
        Some("bob-password-1\n"),
    ));
    assert_eq!(app.login("bob", "bob-password-1").status(), 200);

    // An online backup while the server writes.
    let writer = {
        let admin_token = admin_token.clone();
        let base = app.base.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for i in 0..20 {
                let res = client
                    .post(format!("{base}/v1/users"))
                    .bearer_auth(&admin_token)
                    .json(&serde_json::json!({"username": format!("w{i}"), "password": "w-password-1", "create_api_key": false}))
                    .send()
                    .expect("send");
                assert_eq!(res.status(), 201);
            }
        })
    };
    let dest = h.join("live-backup.db");
    ok_json(admin(
        &h,
        &["--json", "db", "backup", dest.to_str().expect("utf8")],
        None,
    ));
    writer.join().expect("writer");
    let status = ok_json(admin(&h, &["--json", "users", "list"], None));
    assert_eq!(status["total"], 23);
    let copy_home = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&dest, copy_home.path().join("offgrid.db")).expect("copy");
    let copy = ok_json(admin(copy_home.path(), &["--json", "users", "list"], None));
    let n = copy["total"].as_i64().expect("total");
    assert!((3..=23).contains(&n), "a consistent snapshot: {n}");
}

#[test]
fn audit_follow_prints_new_events_as_they_happen() {
    use std::io::{BufRead, BufReader};

    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    ok_json(admin(
        h,
        &["--json", "setup", "root", "--password-stdin"],
        Some("root-password-1\n"),
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_offgrid-admin"))
        .args(["--json", "audit", "--follow"])
        .env("OFFGRID_HOME", h)
        .env("OFFGRID_BCRYPT_COST", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follow");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: Value =
        serde_json::from_str(&lines.next().expect("line").expect("read")).expect("json");
    assert_eq!(first["action"], "setup.admin_created");
    ok_json(admin(
        h,
        &[
            "--json",
            "users",
            "create",
            "carol",
            "--no-api-key",
            "--password-stdin",
        ],
        Some("carol-password-1\n"),
    ));
    let next: Value =
        serde_json::from_str(&lines.next().expect("line").expect("read")).expect("json");
    assert_eq!(next["action"], "user.created");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn audit_prune_deletes_old_entries_only() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    ok_json(admin(
        h,
        &["--json", "setup", "root", "--password-stdin"],
        Some("root-password-1\n"),
    ));
    // Nothing is older than a day yet.
    let pruned = ok_json(admin(
        h,
        &["--json", "audit", "prune", "--older-than-days", "1"],
        None,
    ));
    assert_eq!(pruned["deleted"], 0);
    assert_eq!(pruned["older_than_days"], 1);
    let by_setting = ok_json(admin(h, &["--json", "audit", "prune"], None));
    assert_eq!(by_setting["older_than_days"], 90);
    let audit = ok_json(admin(h, &["--json", "audit", "--action", "setup."], None));
    assert_eq!(audit["total"], 1);
    let bad = admin(h, &["audit", "prune", "--older-than-days", "0"], None);
    one_line_error(&bad, 2);
}

#[test]
fn quota_show_set_and_reset_reach_the_running_server() {
    let app = spawn_multi_user();
    let h = app.home.path().to_owned();
    let admin_token = app.setup_admin();
    let (_, key) = app.create_user(&admin_token, "alice", "user");
    let shown = ok_json(admin(&h, &["--json", "quota", "show", "alice"], None));
    assert_eq!(shown["limits"]["requests_per_minute"], 60, "{shown}");
    assert_eq!(shown["overrides"]["requests_per_minute"], Value::Null);

    let set = ok_json(admin(
        &h,
        &[
            "--json",
            "quota",
            "set",
            "alice",
            "--requests-per-minute",
            "1",
            "--tokens-per-day",
            "unlimited",
        ],
        None,
    ));
    assert_eq!(set["limits"]["requests_per_minute"], 1);
    assert_eq!(set["limits"]["tokens_per_day"], Value::Null);
    // The running server applies it on the next request (a missing model
    // still counts: the request was admitted).
    let ask = || {
        app.post(
            "/v1/chat/completions",
            Some(&key),
            serde_json::json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .status()
        .as_u16()
    };
    assert_eq!(ask(), 404);
    assert_eq!(ask(), 429);
    ok_json(admin(&h, &["--json", "quota", "reset", "alice"], None));
    assert_eq!(ask(), 404, "counters cleared");
    // Only the named limit changes; `default` removes an override.
    let set = ok_json(admin(
        &h,
        &[
            "--json",
            "quota",
            "set",
            "alice",
            "--requests-per-minute",
            "default",
        ],
        None,
    ));
    assert_eq!(set["limits"]["requests_per_minute"], 60);
    assert_eq!(set["limits"]["tokens_per_day"], Value::Null, "{set}");

    for bad in [
        &["quota", "set", "alice", "--max-concurrent", "0"][..],
        &["quota", "set", "alice"][..],
    ] {
        one_line_error(&admin(&h, bad, None), 2);
    }
    one_line_error(&admin(&h, &["quota", "show", "nobody"], None), 1);
}

#[test]
fn invite_create_list_and_revoke_through_the_account_service() {
    let app = spawn_multi_user();
    let h = app.home.path().to_owned();
    app.setup_admin();
    let created = ok_json(admin(
        &h,
        &[
            "--json",
            "invite",
            "create",
            "--role",
            "viewer",
            "--expires-in-hours",
            "2",
            "--note",
            "for Vera",
        ],
        None,
    ));
    let code = created["code"].as_str().expect("code").to_owned();
    offgrid_tests::log_capture::record_secret(&code);
    assert_eq!(created["path"], format!("/invite/{code}"));
    let id = created["id"].as_str().expect("id").to_owned();
    let accepted = app.post(
        "/v1/auth/accept-invite",
        None,
        serde_json::json!({"code": code, "username": "vera", "password": "vera-password-1"}),
    );
    assert_eq!(accepted.status(), 200);

    let other = ok_json(admin(
        &h,
        &["--json", "invite", "create", "--role", "user"],
        None,
    ));
    let other_id = other["id"].as_str().expect("id").to_owned();
    offgrid_tests::log_capture::record_secret(other["code"].as_str().expect("code"));
    let revoked = ok_json(admin(&h, &["--json", "invite", "revoke", &other_id], None));
    assert_eq!(revoked["invitation"]["status"], "revoked");

    let list = ok_json(admin(&h, &["--json", "invite", "list"], None));
    let text = list.to_string();
    assert!(!text.contains(&code), "never the code: {text}");
    let rows = list["data"].as_array().expect("data");
    let used = rows.iter().find(|r| r["id"] == id.as_str()).expect("used");
    assert_eq!(used["status"], "used");
    assert_eq!(used["used_by"]["username"], "vera");
    assert_eq!(used["created_by"]["name"], "offgrid-admin");
    assert_eq!(used["note"], "for Vera");
    let text_list = admin(&h, &["invite", "list"], None);
    assert!(String::from_utf8_lossy(&text_list.stdout).contains("used by vera"));

    // Bad input: one line and a non-zero exit.
    let used_again = admin(&h, &["invite", "revoke", &id], None);
    assert!(one_line_error(&used_again, 1).contains("has been used"));
    one_line_error(&admin(&h, &["invite", "revoke", "no-such-id"], None), 1);
    let guest = admin(&h, &["invite", "create", "--role", "guest"], None);
    assert!(one_line_error(&guest, 2).contains("role"));
    one_line_error(&admin(&h, &["invite", "create", "--role", "root"], None), 2);
    one_line_error(&admin(&h, &["invite", "create"], None), 2);
    let hours = [
        "invite",
        "create",
        "--role",
        "user",
        "--expires-in-hours",
        "0",
    ];
    one_line_error(&admin(&h, &hours, None), 2);

    // The same audit entries as over HTTP, with the operator as actor.
    let audit = ok_json(admin(
        &h,
        &["--json", "audit", "--action", "invitation."],
        None,
    ));
    let entries = audit["data"].as_array().expect("data");
    for action in [
        "invitation.created",
        "invitation.revoked",
        "invitation.accepted",
    ] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "invitation.created")
            .all(|e| e["actor"] == "offgrid-admin")
    );
}
