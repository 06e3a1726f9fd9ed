//! The layering rules, checked by machine on `cargo metadata`'s resolved
//! graph (normal dependencies only; dev-dependencies may cross layers).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

struct Graph {
    names: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let deps = meta["resolve"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let normal = n["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["kind"].is_null())
                })
                .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
                .collect();
            (n["id"].as_str().unwrap_or_default().to_owned(), normal)
        })
        .collect();
    Graph { names, deps }
}

impl Graph {
    fn id(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no package {name}"))
    }

    /// Names of every package `name` depends on, transitively.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.id(name)];
        while let Some(id) = stack.pop() {
            for dep in self.deps.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen.iter().map(|id| self.names[id].clone()).collect()
    }

    fn direct(&self, name: &str) -> BTreeSet<String> {
        self.deps[&self.id(name)]
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }
}

#[test]
fn domain_and_policy_have_no_io_frameworks() {
    let g = graph();
    for krate in ["offgrid-domain", "offgrid-policy"] {
        let all = g.closure(krate);
        for banned in [
            "diesel",
            "libsqlite3-sys",
            "actix-web",
            "actix-rt",
            "tokio",
            "offgrid-storage",
            "offgrid-http",
        ] {
            assert!(!all.contains(banned), "{krate} depends on {banned}");
        }
    }
}

#[test]
fn the_blocking_crates_never_pull_in_tokio() {
    // These crates are blocking by design: async callers reach them
    // through a blocking pool, so none needs a runtime.
    let g = graph();
    for krate in [
        "offgrid-domain",
        "offgrid-policy",
        "offgrid-storage",
        "offgrid-auth",
        "offgrid-inference",
        "offgrid-workspace",
        "offgrid-rag",
    ] {
        assert!(
            !g.closure(krate).contains("tokio"),
            "{krate} depends on tokio"
        );
    }
}

#[test]
fn only_http_knows_actix_and_only_storage_knows_diesel() {
    let g = graph();
    let ours = [
        "offgrid-domain",
        "offgrid-policy",
        "offgrid-config",
        "offgrid-storage",
        "offgrid-auth",
        "offgrid-http",
        "offgrid-inference",
        "offgrid-workspace",
        "offgrid-rag",
    ];
    for krate in ours {
        let all = g.closure(krate);
        assert_eq!(
            all.contains("actix-web"),
            krate == "offgrid-http",
            "{krate} and actix-web"
        );
        assert_eq!(
            all.contains("diesel"),
            krate == "offgrid-storage",
            "{krate} and diesel"
        );
    }
    assert!(
        !g.closure("offgrid-http").contains("offgrid-storage"),
        "http reaches storage only through traits"
    );
    assert!(
        !g.closure("offgrid-auth").contains("offgrid-storage"),
        "auth reaches storage only through traits"
    );
    assert!(
        !g.closure("offgrid-workspace").contains("offgrid-storage"),
        "the workspace reaches storage only through traits"
    );
    assert!(
        g.direct("offgrid-server").contains("offgrid-storage"),
        "the binary wires storage in"
    );
}

#[test]
fn both_binaries_open_their_services_through_offgrid_cli_without_http_or_inference() {
    let g = graph();
    assert!(
        g.direct("offgrid-cli").contains("offgrid-storage"),
        "the shared wiring opens storage"
    );
    for bin in ["offgrid-server", "offgrid-admin"] {
        assert!(
            g.direct(bin).contains("offgrid-cli"),
            "{bin} opens its services through offgrid-cli"
        );
    }
    for krate in ["offgrid-cli", "offgrid-admin"] {
        let all = g.closure(krate);
        for banned in [
            "offgrid-http",
            "offgrid-inference",
            "actix-web",
            "candle-core",
        ] {
            assert!(!all.contains(banned), "{krate} depends on {banned}");
        }
    }
}

/// The workspace root (this crate lives in `tests/`).
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_admin_binary_can_act_as_the_operator() {
    // 1. Only offgrid-admin asks for the domain's `operator` feature as a
    //    normal dependency (storage and auth tests may, as dev-dependencies).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut normal = BTreeSet::new();
    for package in meta["packages"].as_array().expect("packages") {
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let asks = dep["name"] == "offgrid-domain"
                && dep["features"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "operator"));
            if asks && dep["kind"].is_null() {
                normal.insert(package["name"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(normal, BTreeSet::from(["offgrid-admin".to_owned()]));

    // 2. No library or server source builds the capability (features unify
    //    in a workspace build, so the feature alone cannot stop it).
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "bins/server", "tests", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    let offenders: Vec<_> = files
        .iter()
        .filter(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(p);
            let test_only = rel.starts_with("crates/storage/tests")
                || rel.starts_with("crates/auth/tests")
                || rel.ends_with("tests/api/layering.rs");
            let definition = rel.ends_with("crates/domain/src/scope.rs");
            !test_only
                && !definition
                && std::fs::read_to_string(p)
                    .is_ok_and(|text| text.contains("OperatorCapability::assume"))
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}
