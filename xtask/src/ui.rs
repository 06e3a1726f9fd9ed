//! The web UI's outside parts: `cargo xtask vendor-ui` fetches the small
//! browser libraries the UI is built on from npm at pinned versions into
//! `crates/ui/assets/vendor` (committed, each with its licence), and the
//! browser tests' Node packages (playwright-core, axe-core) are installed
//! with `npm ci` from `tests/ui/package-lock.json`; the tests drive
//! Debian's Chromium, installed with apt when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run;

/// npm packages vendored into the UI, at these exact versions.
const PACKAGES: &[&str] = &[
    "preact@11.2.0",
    "htm@3.1.1",
    "marked@18.2.1",
    "dompurify@3.4.18",
    "@highlightjs/cdn-assets@11.12.0",
];

/// Languages highlight.js knows in the UI (loaded when a code block needs
/// them).
pub(crate) const LANGUAGES: &[&str] = &[
    "bash",
    "c",
    "cpp",
    "css",
    "diff",
    "go",
    "java",
    "javascript",
    "json",
    "markdown",
    "python",
    "rust",
    "sql",
    "typescript",
    "xml",
    "yaml",
];

/// (source in node_modules, destination under vendor/, bare imports to
/// rewrite to relative ones).
/// Text replacements (from, to) made in a vendored file.
type Rewrites = &'static [(&'static str, &'static str)];

const FILES: &[(&str, &str, Rewrites)] = &[
    ("preact/dist/preact.mjs", "preact/preact.mjs", &[]),
    (
        "preact/hooks/dist/hooks.mjs",
        "preact/hooks.mjs",
        &[("from\"preact\"", "from\"./preact.mjs\"")],
    ),
    ("preact/LICENSE", "preact/LICENSE", &[]),
    ("htm/dist/htm.mjs", "htm/htm.mjs", &[]),
    ("htm/LICENSE", "htm/LICENSE", &[]),
    ("marked/lib/marked.esm.js", "marked/marked.esm.js", &[]),
    ("marked/LICENSE", "marked/LICENSE", &[]),
    (
        "dompurify/dist/purify.es.mjs",
        "dompurify/purify.es.mjs",
        &[],
    ),
    ("dompurify/LICENSE", "dompurify/LICENSE", &[]),
    (
        "@highlightjs/cdn-assets/es/core.min.js",
        "highlight/core.min.js",
        &[],
    ),
    ("@highlightjs/cdn-assets/LICENSE", "highlight/LICENSE", &[]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `cargo xtask vendor-ui`: fetches [`PACKAGES`] with npm into a scratch
/// folder and copies the files the UI uses into `crates/ui/assets/vendor`,
/// with source-map comments dropped and bare imports made relative (the
/// CSP allows no inline import map). Running it twice gives the same files.
pub(crate) fn vendor() -> Result<(), String> {
    let scratch = std::env::temp_dir().join(format!("offgrid-vendor-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    std::fs::write(scratch.join("package.json"), "{\"private\": true}\n")
        .map_err(|e| format!("package.json: {e}"))?;
    let result = (|| {
        run(Command::new("npm")
            .current_dir(&scratch)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--save-exact",
            ])
            .args(PACKAGES))?;
        let modules = scratch.join("node_modules");
        let vendor = root().join("crates/ui/assets/vendor");
        if vendor.exists() {
            std::fs::remove_dir_all(&vendor).map_err(|e| format!("{}: {e}", vendor.display()))?;
        }
        let mut files: Vec<(String, String, Rewrites)> = FILES
            .iter()
            .map(|(s, d, r)| ((*s).to_owned(), (*d).to_owned(), *r))
            .collect();
        for lang in LANGUAGES {
            files.push((
                format!("@highlightjs/cdn-assets/es/languages/{lang}.min.js"),
                format!("highlight/languages/{lang}.min.js"),
                &[],
            ));
        }
        for (source, dest, rewrites) in files {
            let text = std::fs::read_to_string(modules.join(&source))
                .map_err(|e| format!("{source}: {e}"))?;
            let mut text: String = text
                .lines()
                .filter(|l| !l.starts_with("//# sourceMappingURL="))
                .collect::<Vec<_>>()
                .join("\n");
            text.push('\n');
            for (from, to) in rewrites {
                if !text.contains(from) {
                    return Err(format!("{source}: expected {from:?} to rewrite"));
                }
                text = text.replace(from, to);
            }
            let path = vendor.join(&dest);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let mut readme = String::from(
            "# Vendored browser libraries\n\nFetched from npm by `cargo xtask vendor-ui`; \
             do not edit by hand. Each folder holds its licence.\n\n",
        );
        for p in PACKAGES {
            readme.push_str(&format!("- `{p}`\n"));
        }
        std::fs::write(vendor.join("README.md"), readme).map_err(|e| format!("README: {e}"))?;
        eprintln!(
            "xtask: vendored {} packages into {}",
            PACKAGES.len(),
            vendor.display()
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Debian's Chromium, installed with apt when it is missing (the only way
/// this machine gets a browser; nothing downloads one of its own).
fn ensure_chromium() -> Result<(), String> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's chromium and chromium-driver");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-qq"])?;
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
        "fonts-dejavu-core",
    ])
    .map_err(|e| format!("{e}: install chromium with apt-get (as root) and run again"))
}

/// What both the browser tests and the UI benchmark need: Chromium, the
/// Node packages (`npm ci`), the default models and the release server.
/// Returns the server binary's path.
fn prepare() -> Result<PathBuf, String> {
    ensure_chromium()?;
    run(Command::new("npm")
        .current_dir(root().join("tests/ui"))
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"]))?;
    run(crate::cargo().args(["build", "--release", "--bin", "offgrid"]))?;
    crate::models::install(None)?;
    let bin = crate::bench::target_dir().join("release").join("offgrid");
    std::fs::canonicalize(&bin).map_err(|e| format!("{}: {e}", bin.display()))
}

/// `node` in `tests/ui` with the server binary and the models folder.
fn node(bin: PathBuf) -> Result<Command, String> {
    let mut cmd = Command::new("node");
    cmd.current_dir(root().join("tests/ui"))
        .env("OFFGRID_BIN", bin)
        .env(
            "OFFGRID_MODELS_DIR",
            crate::models::home_dir()?.join("models"),
        );
    Ok(cmd)
}

/// `cargo xtask bench ui`: first load and a 1,000-message transcript in
/// Chromium against peers in the same run (`tests/ui/bench.mjs`); prints
/// a JSON report.
pub(crate) fn bench() -> Result<(), String> {
    let bin = prepare()?;
    run(node(bin)?.arg("bench.mjs"))
}

/// `cargo xtask ui-test`: the web UI in a real browser. Installs Chromium
/// (apt) and the test packages (`npm ci`), builds the release server, and
/// runs `tests/ui/*.test.js` with Node's test runner, one file at a time
/// (each starts its own server). Screenshots land in `tests/ui/screenshots`.
pub(crate) fn browser_tests() -> Result<(), String> {
    let bin = prepare()?;
    let dir = root().join("tests/ui");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.js"))
        .collect();
    files.sort();
    run(node(bin)?
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&files))
}
