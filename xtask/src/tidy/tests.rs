//! Unit tests of the tidy rules on small in-memory files and manifests.

use super::*;

fn long(lines: usize) -> String {
    "//! Long.\n".to_owned() + &"x\n".repeat(lines - 1)
}

#[test]
fn a_module_doc_or_doc_attribute_comes_first() {
    assert_eq!(module_doc("a.rs", "//! Holds a.\nfn a() {}\n"), None);
    assert_eq!(
        module_doc("a.rs", "\n#![doc = include_str!(\"R.md\")]\n"),
        None
    );
    let v = module_doc("a.rs", "\n/// Not a module doc.\nfn a() {}\n");
    assert_eq!(
        v.map(|v| v.to_string()).as_deref(),
        Some("a.rs:2: no module doc: start the file with `//!` lines saying what it holds")
    );
    assert!(module_doc("a.rs", "use x;\n//! Too late.\n").is_some());
    assert!(module_doc("a.rs", "").is_some());
}

#[test]
fn files_over_the_cap_need_an_entry() {
    assert_eq!(length("a.rs", &long(MAX_LINES), &[]), None);
    let v = length("a.rs", &long(MAX_LINES + 1), &[]).expect("over the cap");
    assert_eq!((v.path.as_str(), v.line), ("a.rs", MAX_LINES + 1));
    assert_eq!(
        length("a.rs", &long(MAX_LINES + 1), &[("a.rs", "why")]),
        None
    );
    assert!(length("b.rs", &long(MAX_LINES + 1), &[("a.rs", "why")]).is_some());
}

#[test]
fn json_macros_are_found_outside_comments() {
    let text =
        "//! Routes.\n// json! in a comment\nlet v = json!({});\nlet w = serde_json::json!(1);\n";
    let lines: Vec<usize> = json_macro("r.rs", text).iter().map(|v| v.line).collect();
    assert_eq!(lines, [3, 4]);
    assert!(json_macro("r.rs", "let v: Json<Body> = body;\n").is_empty());
    // The unit tests at the end may build request bodies with it.
    let with_tests = "let v = json!(1);\n#[cfg(test)]\nmod tests {\n    let b = json!({});\n}\n";
    let lines: Vec<usize> = json_macro("r.rs", with_tests)
        .iter()
        .map(|v| v.line)
        .collect();
    assert_eq!(lines, [1]);
}

#[test]
fn manifests_are_read_in_every_form() {
    let manifest = r#"
[package]
name = "x"

[dependencies]
# a comment
offgrid-domain = { workspace = true, features = ["operator"] }
serde.workspace = true
"quoted" = "1"
multi = { version = "1",
    features = [
    "b",
] }

[features]
operator = []

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dependencies.tabled]
version = "1"

[dev-dependencies]
tempfile.workspace = true
"#;
    let got: Vec<(String, String, usize)> = dependencies(manifest)
        .into_iter()
        .map(|d| (d.table, d.key, d.line))
        .collect();
    let want = [
        ("dependencies", "offgrid-domain", 7),
        ("dependencies", "serde", 8),
        ("dependencies", "quoted", 9),
        ("dependencies", "multi", 10),
        ("target.'cfg(unix)'.dependencies", "libc", 19),
        ("dependencies", "tabled", 21),
        ("dev-dependencies", "tempfile", 25),
    ];
    let want: Vec<(String, String, usize)> = want
        .iter()
        .map(|(t, k, l)| ((*t).to_owned(), (*k).to_owned(), *l))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn crate_names_count_only_as_paths_uses_and_extern_crates() {
    for used in [
        "use serde_json::Value;",
        "let v = serde_json::json!(1);",
        "use serde_json;",
        "pub use serde_json as json;",
        "extern crate serde_json;",
        "#[serde_json::attr] fn f() {}",
        "let x = ::serde_json::Value::Null;",
    ] {
        assert!(names_crate(used, "serde_json"), "{used}");
    }
    for unused in [
        "use my_serde_json::Value;",
        "use serde_json_ext::Value;",
        "let v = other::serde_json::Value;",
        "// serde_json::Value in a comment",
        "let serde_json = 1;",
        "fn reuse(serde_json: u8) {}",
        "let crate serde_json;",
    ] {
        assert!(!names_crate(unused, "serde_json"), "{unused}");
    }
}

#[test]
fn unused_and_repeated_dependencies_are_reported() {
    let manifest = "[dependencies]\nserde.workspace = true\nlibsqlite3-sys.workspace = true\nfutures-util = \"0.3\"\n\n[dev-dependencies]\nserde.workspace = true\ntempfile = \"3\"\n";
    let krate = Crate {
        manifest_path: "c/Cargo.toml",
        manifest,
        sources: vec![
            "//! C.\nuse serde::Serialize;\n",
            "use futures_util::StreamExt;\n",
        ],
    };
    let got: Vec<String> = unused_dependencies(&krate, &[])
        .iter()
        .map(|v| format!("{}:{}", v.path, v.line))
        .collect();
    assert_eq!(
        got,
        ["c/Cargo.toml:3", "c/Cargo.toml:7", "c/Cargo.toml:8"],
        "libsqlite3-sys unused, serde repeated, tempfile unused"
    );
    let allowed = [("c/Cargo.toml", "libsqlite3-sys", "features only")];
    assert_eq!(unused_dependencies(&krate, &allowed).len(), 2);
}

#[test]
fn unused_workspace_dependencies_are_reported() {
    let root = "[workspace]\nmembers = [\"a\"]\n\n[workspace.dependencies]\nserde = \"1\"\nrand = \"0.8\"\n";
    let member = "[dependencies]\nserde.workspace = true\n";
    let got = unused_workspace_dependencies(root, &[member]);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].to_string(),
        "Cargo.toml:6: workspace dependency `rand` is used by no member"
    );
}

#[test]
fn stale_allow_list_entries_are_reported() {
    let files = vec![
        ("short.rs".to_owned(), long(MAX_LINES)),
        ("long.rs".to_owned(), long(MAX_LINES + 1)),
    ];
    let manifest = "[dependencies]\nlibsqlite3-sys = \"0.30\"\nzip = \"2\"\n";
    let crates = [Crate {
        manifest_path: "c/Cargo.toml",
        manifest,
        sources: vec!["use zip::ZipArchive;\n"],
    }];
    let none = stale_entries(
        &files,
        &crates,
        &[("long.rs", "why")],
        &[("c/Cargo.toml", "libsqlite3-sys", "why")],
    );
    assert_eq!(none, []);
    let all = stale_entries(
        &files,
        &crates,
        &[("short.rs", "why"), ("gone.rs", "why")],
        &[
            ("c/Cargo.toml", "zip", "why"),
            ("c/Cargo.toml", "rand", "why"),
        ],
    );
    assert_eq!(all.len(), 4, "{all:#?}");
}

#[test]
fn check_applies_the_json_rule_only_under_routes() {
    let text = "//! Doc.\nlet v = json!(1);\n".to_owned();
    let files = vec![
        ("crates/http/src/routes/new.rs".to_owned(), text.clone()),
        ("crates/http/src/error.rs".to_owned(), text),
    ];
    let found = check(&files, &[], "");
    let json: Vec<&Violation> = found
        .iter()
        .filter(|v| v.what.starts_with("json!"))
        .collect();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0].path, "crates/http/src/routes/new.rs");
}

#[test]
fn stale_entries_point_at_their_own_list() {
    let (long, pathless) = ("xtask/src/soak.rs", "crates/storage/Cargo.toml");
    let in_long = stale("LONG_FILES", long, String::new()).line;
    let in_pathless = stale("USED_WITHOUT_A_PATH", pathless, String::new()).line;
    let line = |n: usize| THIS_FILE.lines().nth(n - 1).unwrap_or_default();
    assert!(line(in_long).contains(long) && line(in_pathless).contains(pathless));
    let pathless_list = THIS_FILE
        .lines()
        .position(|l| l.starts_with("pub const USED_WITHOUT_A_PATH:"))
        .map_or(0, |i| i + 1);
    assert!(in_long < pathless_list && pathless_list <= in_pathless);
}

#[test]
fn unsafe_code_is_allowed_only_in_the_simd_kernels() {
    let text = "//! Doc.\n#[allow(unsafe_code)]\nfn f() {}\n";
    assert_eq!(unsafe_allowed("crates/http/src/lib.rs", text).len(), 1);
    assert!(unsafe_allowed("crates/inference/src/quant.rs", text).is_empty());
    assert!(
        unsafe_allowed(
            "crates/http/src/lib.rs",
            "// allow(unsafe_code) in a comment\n"
        )
        .is_empty()
    );
    assert!(unsafe_allowed("xtask/src/tidy/tests.rs", text).is_empty());
}
