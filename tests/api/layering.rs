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
        g.direct("offgrid-server").contains("offgrid-storage"),
        "the binary wires storage in"
    );
}
