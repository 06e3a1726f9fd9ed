//! The embedded files hold together: every module a page imports is
//! embedded, nothing loads from another origin, the HTML has no inline
//! script, every vendored library has its licence, gzip forms decompress to
//! the files, and the first page load stays under its size budget.

use std::collections::{BTreeSet, VecDeque};
use std::io::Read;

use super::*;

fn text(path: &str) -> String {
    let file = asset(path).unwrap_or_else(|| panic!("{path} is embedded"));
    String::from_utf8(file.bytes.into_owned()).unwrap_or_else(|_| panic!("{path} is UTF-8"))
}

/// The relative module specifiers in a JS file: static imports and
/// re-exports (`from "./x.js"`, `import "./x.js"`) and dynamic imports
/// with a literal or a template prefix.
fn imports(source: &str) -> (Vec<String>, Vec<String>) {
    let mut fixed = Vec::new();
    let mut dynamic = Vec::new();
    for marker in ["from\"", "from \"", "import \"", "import\""] {
        let mut rest = source;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find('"') {
                fixed.push(rest[..end].to_owned());
            }
        }
    }
    for marker in ["import(\"", "import(`"] {
        let mut rest = source;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find(['"', '`', '$']) {
                dynamic.push(rest[..end].to_owned());
            }
        }
    }
    (fixed, dynamic)
}

fn resolve(from: &str, spec: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Every file the entry page loads before it is interactive: its script
/// and stylesheet, and their static imports, transitively.
fn first_load() -> BTreeSet<String> {
    let mut seen = BTreeSet::from(["index.html".to_owned(), "app.css".to_owned()]);
    let mut queue = VecDeque::from(["js/main.js".to_owned()]);
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (fixed, _) = imports(&text(&path));
        for spec in fixed {
            queue.push_back(resolve(&path, &spec));
        }
    }
    seen
}

#[test]
fn the_entry_page_is_embedded_and_loads_no_inline_script() {
    let index = text("index.html");
    assert!(index.contains("/assets/js/main.js"));
    let mut rest = index.as_str();
    while let Some(i) = rest.find("<script") {
        rest = &rest[i..];
        let end = rest.find('>').expect("closed tag");
        assert!(
            rest[..end].contains(" src="),
            "inline script: {}",
            &rest[..end]
        );
        rest = &rest[end..];
    }
    assert!(!index.contains(" on"), "no inline event handler attributes");
    assert!(!index.contains("style="), "no inline styles");
    for href in ["/assets/app.css", "/assets/icon.svg"] {
        assert!(index.contains(href));
        assert!(asset(href.trim_start_matches("/assets/")).is_some());
    }
}

#[test]
fn every_import_is_relative_and_embedded() {
    let mut checked = 0;
    for path in paths() {
        if !(path.ends_with(".js") || path.ends_with(".mjs")) {
            continue;
        }
        let source = text(&path);
        // Grammars are data (keyword lists hold "import" and "from"); they
        // import nothing.
        if path.starts_with("vendor/highlight/languages/") {
            assert!(source.trim_end().ends_with("export default hljsGrammar;"));
            continue;
        }
        let (fixed, dynamic) = imports(&source);
        for spec in fixed.iter().chain(&dynamic) {
            assert!(
                spec.starts_with("./") || spec.starts_with("../"),
                "{path}: bare or absolute import {spec:?} (the CSP allows no import map)"
            );
        }
        for spec in fixed {
            let target = resolve(&path, &spec);
            assert!(asset(&target).is_some(), "{path} imports missing {target}");
            checked += 1;
        }
        for prefix in dynamic {
            let target = resolve(&path, &prefix);
            assert!(
                paths().any(|p| p.starts_with(&target)),
                "{path} imports nothing under {target}"
            );
        }
    }
    assert!(checked > 20, "only {checked} imports seen");
}

#[test]
fn our_files_load_nothing_from_another_origin() {
    for path in paths() {
        if path.starts_with("vendor/") || !compressible(&path) {
            continue;
        }
        let source = text(&path);
        for needle in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "url(\"http",
            "fetch(\"http",
            "@import",
            "eval(",
            "new Function",
        ] {
            assert!(!source.contains(needle), "{path} contains {needle:?}");
        }
    }
}

#[test]
fn every_vendored_library_has_its_licence() {
    let libraries: BTreeSet<String> = paths()
        .filter_map(|p| {
            let rest = p.strip_prefix("vendor/")?;
            let (lib, _) = rest.split_once('/')?;
            Some(lib.to_owned())
        })
        .collect();
    assert!(libraries.len() >= 5, "{libraries:?}");
    for lib in libraries {
        assert!(
            asset(&format!("vendor/{lib}/LICENSE")).is_some(),
            "vendor/{lib} has no LICENSE"
        );
    }
}

#[test]
fn gzip_forms_decompress_to_the_files_and_etags_follow_content() {
    let mut zipped = 0;
    for path in paths() {
        let file = asset(&path).expect("listed files are found");
        assert!(file.etag.starts_with('"') && file.etag.ends_with('"'));
        if let Some(gz) = file.gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut out)
                .expect("valid gzip");
            assert_eq!(out, file.bytes.as_ref(), "{path}");
            assert!(gz.len() < file.bytes.len());
            zipped += 1;
        }
    }
    assert!(zipped > 10);
    assert_ne!(
        asset("js/main.js").expect("main").etag,
        asset("js/api.js").expect("api").etag
    );
}

#[test]
fn paths_outside_the_assets_are_never_found() {
    for bad in [
        "",
        "../Cargo.toml",
        "js/../../src/lib.rs",
        "js//main.js",
        "./index.html",
        "js\\main.js",
        "/etc/passwd",
    ] {
        assert!(asset(bad).is_none(), "{bad:?}");
    }
    assert!(asset("js/main.js").is_some());
}

#[test]
fn page_paths_are_the_consoles_pages_only() {
    for good in [
        "sessions",
        "chat/abc",
        "rag",
        "rag/123",
        "invite/code",
        "login",
    ] {
        assert!(is_page(good), "{good}");
    }
    for bad in [
        "",
        "v1/models",
        "chat",
        "chat/a/b",
        "sessions/",
        "invite/",
        "assets/x.js",
        "unknown",
    ] {
        assert!(!is_page(bad), "{bad}");
    }
}

/// The budget: the first page load under 200 KB compressed.
#[test]
fn the_first_load_is_under_200_kb_compressed() {
    let files = first_load();
    assert!(files.contains("vendor/preact/preact.mjs"), "{files:?}");
    let total: usize = files
        .iter()
        .map(|p| {
            let file = asset(p).expect("embedded");
            file.gzip.map_or(file.bytes.len(), <[u8]>::len)
        })
        .sum();
    assert!(total < 200_000, "{total} bytes compressed over {files:?}");
}
