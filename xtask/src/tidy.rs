//! `cargo xtask tidy`: source rules no compiler or linter checks, run early
//! by `cargo xtask test`. Each problem is one line, `path:line: what`.
//!
//! - Every Rust file under `crates/`, `bins/`, `tests/` and `xtask/` starts
//!   with a module doc (`//!` or `#![doc = …]`).
//! - No file is longer than [`MAX_LINES`], except those in [`LONG_FILES`].
//! - No `json!` under `crates/http/src/routes/`: bodies are the typed
//!   structs of `offgrid_http::wire`.
//! - No unused dependency: every key of a member's `[dependencies]`,
//!   `[dev-dependencies]` and `[build-dependencies]` is named in that
//!   crate's sources (`name::…`, `use name`, `extern crate name`, with `-`
//!   read as `_`), unless [`USED_WITHOUT_A_PATH`] says why not; no
//!   dev-dependency repeats a normal one; every `[workspace.dependencies]`
//!   entry is used by some member.
//!
//! An allow-list entry that no longer applies is itself a problem, so the
//! lists only shrink. Everything is read from the work tree: no network,
//! no build.

use std::fmt;
use std::path::Path;

/// The longest a Rust file may be, in lines.
pub const MAX_LINES: usize = 600;

/// Files allowed over [`MAX_LINES`], each with the reason.
pub const LONG_FILES: &[(&str, &str)] = &[
    (
        "crates/workspace/examples/bench_workspace.rs",
        "one benchmark program for sessions, RAG search and ingest with its fixtures and peers; next to split RAG into its own module",
    ),
    (
        "tests/api/rag_access.rs",
        "the cross-tenant matrix for RAG collections as one table with its fixtures; next to split the revocation and deletion scenarios into their own file",
    ),
    (
        "crates/storage/tests/storage.rs",
        "one scenario per storage rule against a real SQLite file; next to split by area (schema, accounts, credentials, audit) with a shared fixture",
    ),
    (
        "crates/inference/src/registry.rs",
        "the models folder's scan, import and removal, plus their unit tests (about a third of it)",
    ),
    (
        "crates/inference/src/engine.rs",
        "the scheduler thread, its supervision and ChatModel: one state machine, read top to bottom",
    ),
    (
        "crates/inference/src/transformer.rs",
        "the whole decoder forward pass in one place, with its unit test",
    ),
    (
        "crates/inference/tests/properties.rs",
        "two property families (chat templates, mutated GGUF headers) in one test binary, both on the real SmolLM2 file",
    ),
    (
        "crates/config/src/load.rs",
        "about 220 of its lines are the unit tests of the defaults < file < env < flags precedence",
    ),
    (
        "bins/server/tests/crash.rs",
        "one end-to-end crash test: its server fixture, write load and verifier",
    ),
    (
        "tests/api/fuzz.rs",
        "the request-body fuzzing of every route and of the inference parameters, sharing its server fixtures",
    ),
    (
        "xtask/src/soak.rs",
        "one goose load test: its scenarios, server fixture and checks",
    ),
];

/// Dependencies no source names, each as (manifest, dependency, reason).
pub const USED_WITHOUT_A_PATH: &[(&str, &str, &str)] = &[(
    "crates/storage/Cargo.toml",
    "libsqlite3-sys",
    "only turns on its `bundled` feature, so diesel links the SQLite it builds",
)];

/// Where the `json!` rule applies.
const ROUTES: &str = "crates/http/src/routes/";

/// The folders whose Rust files and crates are checked.
const ROOTS: &[&str] = &["crates", "bins", "tests", "xtask"];

/// One broken rule, at a line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The file, relative to the workspace root, with `/` separators.
    pub path: String,
    /// 1-based.
    pub line: usize,
    /// What is wrong and what to do.
    pub what: String,
}

impl Violation {
    fn new(path: &str, line: usize, what: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            line,
            what: what.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.what)
    }
}

/// A file's first non-blank line must be a module doc.
pub fn module_doc(path: &str, text: &str) -> Option<Violation> {
    let first = text.lines().position(|l| !l.trim().is_empty());
    let documented = first.is_some_and(|i| {
        let line = text.lines().nth(i).unwrap_or_default().trim_start();
        line.starts_with("//!") || line.starts_with("#![doc")
    });
    (!documented).then(|| {
        Violation::new(
            path,
            first.map_or(1, |i| i + 1),
            "no module doc: start the file with `//!` lines saying what it holds",
        )
    })
}

/// A file over [`MAX_LINES`] that `allowed` does not list.
pub fn length(path: &str, text: &str, allowed: &[(&str, &str)]) -> Option<Violation> {
    let lines = text.lines().count();
    (lines > MAX_LINES && !allowed.iter().any(|(p, _)| *p == path)).then(|| {
        Violation::new(
            path,
            MAX_LINES + 1,
            format!(
                "{lines} lines, over the {MAX_LINES}-line cap: split it, or add it to LONG_FILES in xtask/src/tidy.rs with a reason"
            ),
        )
    })
}

/// Lines of code (not comments, not the `#[cfg(test)]` module at the end,
/// whose tests may build request bodies with it) that call `json!`.
pub fn json_macro(path: &str, text: &str) -> Vec<Violation> {
    code_lines(text)
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| line.contains("json!"))
        .map(|(n, _)| {
            Violation::new(
                path,
                n,
                "json! under routes/: answer with a #[derive(Serialize)] type",
            )
        })
        .collect()
}

/// The only files that may lift the workspace's `unsafe_code = "deny"`:
/// the SIMD kernels, which call intrinsics chosen at run time.
pub const UNSAFE_ALLOWED: &[&str] = &[
    "crates/inference/src/quant.rs",
    "crates/inference/src/quant/avx512.rs",
    "crates/inference/src/transformer.rs",
];

/// Lines that allow unsafe code outside [`UNSAFE_ALLOWED`].
pub fn unsafe_allowed(path: &str, text: &str) -> Vec<Violation> {
    if UNSAFE_ALLOWED.contains(&path) || path.starts_with("xtask/src/tidy") {
        return Vec::new();
    }
    code_lines(text)
        .filter(|(_, line)| line.contains("allow(unsafe_code") || line.contains(", unsafe_code"))
        .map(|(n, _)| {
            Violation::new(
                path,
                n,
                "allows unsafe code: only the SIMD kernels may (UNSAFE_ALLOWED in xtask/src/tidy.rs)",
            )
        })
        .collect()
}

/// Numbered (1-based) lines that are not `//` comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// A dependency entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The key, the name the crate's code uses (after `-` → `_`).
    pub key: String,
    /// The table it is in: `dependencies`, `dev-dependencies`,
    /// `target.'cfg(unix)'.dependencies`, `workspace.dependencies`…
    pub table: String,
    /// 1-based line of the key (or of its `[table.key]` header).
    pub line: usize,
    /// What follows the key, e.g. `.workspace = true`.
    pub spec: String,
}

/// Every dependency a manifest declares, in any dependency table. Reads
/// the `key = …` / `key.workspace = …` lines and `[dependencies.key]`
/// headers Cargo manifests use; values spanning lines are skipped over.
pub fn dependencies(manifest: &str) -> Vec<Dep> {
    let mut deps = Vec::new();
    let mut table: Option<String> = None;
    let mut depth = 0i32;
    for (i, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if depth == 0 && line.starts_with('[') && !line.starts_with("[[") {
            let name = line.trim_start_matches('[').trim_end_matches(']').trim();
            table = None;
            if name.ends_with("dependencies") {
                table = Some(name.to_owned());
            } else if let Some((head, key)) = name.rsplit_once('.')
                && head.ends_with("dependencies")
            {
                deps.push(Dep {
                    key: key.trim_matches('"').to_owned(),
                    table: head.to_owned(),
                    line: i + 1,
                    spec: String::new(),
                });
            }
            continue;
        }
        if depth == 0
            && let Some(table) = &table
        {
            let end = line.find(['=', '.', ' ']).unwrap_or(line.len());
            let key = line[..end].trim_matches('"');
            if !key.is_empty() && end < line.len() {
                deps.push(Dep {
                    key: key.to_owned(),
                    table: table.clone(),
                    line: i + 1,
                    spec: line[end..].trim().to_owned(),
                });
            }
        }
        for c in line.chars() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
        }
    }
    deps
}

/// Whether `source` names the crate `name` (already `-` → `_`) in code:
/// `name::…` (not `other::name::…`), `use name…` or `extern crate name`.
pub fn names_crate(source: &str, name: &str) -> bool {
    code_lines(source).any(|(_, line)| {
        line.match_indices(name).any(|(at, _)| {
            let before = &line[..at];
            let after = &line[at + name.len()..];
            let ident = |c: char| c.is_alphanumeric() || c == '_';
            if before.ends_with(ident) || after.starts_with(ident) {
                return false;
            }
            let path_start = match before.strip_suffix("::") {
                Some(rest) => !rest.ends_with(|c: char| ident(c) || c == '>'),
                None => true,
            };
            let mut words = before.rsplit(|c: char| !ident(c)).filter(|w| !w.is_empty());
            let (last, second) = (words.next(), words.next());
            (path_start && after.starts_with("::"))
                || last == Some("use")
                || (last == Some("crate") && second == Some("extern"))
        })
    })
}

/// One member crate: its manifest and its sources.
pub struct Crate<'a> {
    /// The manifest's path, e.g. `crates/auth/Cargo.toml`.
    pub manifest_path: &'a str,
    /// The manifest's text.
    pub manifest: &'a str,
    /// The text of every Rust file in the crate's folder.
    pub sources: Vec<&'a str>,
}

/// Dependencies of `krate` that none of its sources name, and
/// dev-dependencies that repeat a normal dependency word for word.
pub fn unused_dependencies(krate: &Crate<'_>, allowed: &[(&str, &str, &str)]) -> Vec<Violation> {
    let deps = dependencies(krate.manifest);
    let mut found = Vec::new();
    for dep in &deps {
        let listed = allowed
            .iter()
            .any(|(m, d, _)| *m == krate.manifest_path && *d == dep.key);
        let ident = dep.key.replace('-', "_");
        if !listed && !krate.sources.iter().any(|s| names_crate(s, &ident)) {
            found.push(Violation::new(
                krate.manifest_path,
                dep.line,
                format!(
                    "[{}] `{}` is not used by any source of this crate: remove it (or, if only its features or build matter, add it to USED_WITHOUT_A_PATH in xtask/src/tidy.rs)",
                    dep.table, dep.key
                ),
            ));
        }
        if dep.table == "dev-dependencies"
            && deps
                .iter()
                .any(|d| d.table == "dependencies" && d.key == dep.key && d.spec == dep.spec)
        {
            found.push(Violation::new(
                krate.manifest_path,
                dep.line,
                format!(
                    "dev-dependency `{}` repeats the normal dependency: remove it",
                    dep.key
                ),
            ));
        }
    }
    found
}

/// `[workspace.dependencies]` entries of `root` no member manifest uses.
pub fn unused_workspace_dependencies(root: &str, members: &[&str]) -> Vec<Violation> {
    let used: Vec<Dep> = members.iter().flat_map(|m| dependencies(m)).collect();
    dependencies(root)
        .into_iter()
        .filter(|d| d.table == "workspace.dependencies")
        .filter(|d| !used.iter().any(|u| u.key == d.key))
        .map(|d| {
            Violation::new(
                "Cargo.toml",
                d.line,
                format!("workspace dependency `{}` is used by no member", d.key),
            )
        })
        .collect()
}

/// This file, to point at the allow-list entry that went stale.
const THIS_FILE: &str = include_str!("tidy.rs");

/// A stale entry of the allow-list `list`, at its line in this file.
fn stale(list: &str, entry: &str, why: String) -> Violation {
    let start = format!("pub const {list}:");
    let quoted = format!("\"{entry}\"");
    let line = THIS_FILE
        .lines()
        .enumerate()
        .skip_while(|(_, l)| !l.starts_with(&start))
        .find(|(_, l)| l.contains(&quoted))
        .map_or(1, |(i, _)| i + 1);
    Violation::new("xtask/src/tidy.rs", line, why)
}

/// Allow-list entries that no longer apply: a listed long file that is
/// gone or within the cap, a dependency that is gone or is named after all. `files` is every
/// checked Rust file with its text; `crates` every member.
pub fn stale_entries(
    files: &[(String, String)],
    crates: &[Crate<'_>],
    long: &[(&str, &str)],
    pathless: &[(&str, &str, &str)],
) -> Vec<Violation> {
    let text = |path: &str| {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
    };
    let mut found = Vec::new();
    for (path, _) in long {
        let lines = text(path).map_or(0, |t| t.lines().count());
        if lines <= MAX_LINES {
            found.push(stale(
                "LONG_FILES",
                path,
                format!("LONG_FILES lists {path}, which has {lines} lines: remove the entry"),
            ));
        }
    }
    for (manifest, dep, _) in pathless {
        let krate = crates.iter().find(|c| c.manifest_path == *manifest);
        let declared =
            krate.is_some_and(|c| dependencies(c.manifest).iter().any(|d| d.key == *dep));
        let named = krate.is_some_and(|c| {
            let ident = dep.replace('-', "_");
            c.sources.iter().any(|s| names_crate(s, &ident))
        });
        if !declared || named {
            found.push(stale(
                "USED_WITHOUT_A_PATH",
                dep,
                format!(
                    "USED_WITHOUT_A_PATH lists {dep} for {manifest}, which {}: remove the entry",
                    if declared {
                        "names it in code"
                    } else {
                        "does not declare it"
                    }
                ),
            ));
        }
    }
    found
}

/// Every rule over the given files and crates, with the allow-lists above.
pub fn check(
    files: &[(String, String)],
    crates: &[Crate<'_>],
    root_manifest: &str,
) -> Vec<Violation> {
    let mut found = Vec::new();
    for (path, text) in files {
        found.extend(module_doc(path, text));
        found.extend(length(path, text, LONG_FILES));
        found.extend(unsafe_allowed(path, text));
        if path.starts_with(ROUTES) {
            found.extend(json_macro(path, text));
        }
    }
    for krate in crates {
        found.extend(unused_dependencies(krate, USED_WITHOUT_A_PATH));
    }
    let members: Vec<&str> = crates.iter().map(|c| c.manifest).collect();
    found.extend(unused_workspace_dependencies(root_manifest, &members));
    found.extend(stale_entries(
        files,
        crates,
        LONG_FILES,
        USED_WITHOUT_A_PATH,
    ));
    found
}

/// `root`-relative path with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Rust files under `dir` (skipping `target` and hidden folders), and the
/// folders holding a `Cargo.toml`.
fn walk(
    dir: &Path,
    rust: &mut Vec<std::path::PathBuf>,
    crates: &mut Vec<std::path::PathBuf>,
) -> Result<(), String> {
    if dir.join("Cargo.toml").is_file() {
        crates.push(dir.to_owned());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<_> = entries
        .map(|e| e.map(|e| e.path()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&path, rust, crates)?;
            }
        } else if name.ends_with(".rs") {
            rust.push(path);
        }
    }
    Ok(())
}

/// `cargo xtask tidy`: prints every violation, one a line; `Err` if any.
pub fn tidy() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut rust, mut dirs) = (Vec::new(), Vec::new());
    for top in ROOTS {
        walk(&root.join(top), &mut rust, &mut dirs)?;
    }
    let files = rust
        .iter()
        .map(|p| Ok((relative(root, p), read(p)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let manifests = dirs
        .iter()
        .map(|d| Ok((relative(root, d), read(&d.join("Cargo.toml"))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let manifest_paths: Vec<String> = manifests
        .iter()
        .map(|(d, _)| format!("{d}/Cargo.toml"))
        .collect();
    // A crate's sources: the Rust files in its folder, not in a nested crate's.
    let owner = |file: &str| {
        manifests
            .iter()
            .map(|(d, _)| d)
            .filter(|d| file.starts_with(&format!("{d}/")))
            .max_by_key(|d| d.len())
    };
    let crates: Vec<Crate<'_>> = manifests
        .iter()
        .zip(&manifest_paths)
        .map(|((dir, manifest), manifest_path)| Crate {
            manifest_path,
            manifest,
            sources: files
                .iter()
                .filter(|(p, _)| owner(p) == Some(dir))
                .map(|(_, t)| t.as_str())
                .collect(),
        })
        .collect();
    let found = check(&files, &crates, &read(&root.join("Cargo.toml"))?);
    for v in &found {
        println!("{v}");
    }
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| e.to_string())?;
    if found.is_empty() {
        eprintln!(
            "xtask: tidy: {} Rust files and {} manifests follow the rules",
            files.len(),
            crates.len()
        );
        Ok(())
    } else {
        Err(format!("tidy: {} problems (listed above)", found.len()))
    }
}

#[cfg(test)]
mod tests;
