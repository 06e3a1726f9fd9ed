//! The OffGrid console: the web UI's files, embedded in the binary.
//!
//! The UI is plain ES modules (`assets/js`) on small vendored libraries
//! (`assets/vendor`, each with its licence; `cargo xtask vendor-ui` fetches
//! them again from npm at the pinned versions). No build step: what is in
//! `assets/` is what the browser gets. This crate knows nothing of HTTP
//! servers; it answers "which bytes, of which type, with which ETag and
//! which gzip form" for a path, and says which paths are the UI's pages
//! (served the same `index.html`, the client-side router picks the page).
//!
//! ```
//! let index = offgrid_ui::index();
//! assert_eq!(index.content_type, "text/html; charset=utf-8");
//! let app = offgrid_ui::asset("js/main.js").expect("embedded");
//! assert!(app.etag.starts_with('"'));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use rust_embed::Embed;

#[derive(Embed)]
#[folder = "assets/"]
struct Files;

/// The Content-Security-Policy of the UI's HTML: scripts, styles, fonts and
/// connections from this origin only, no inline script, no `eval`, no
/// plugins, no framing, images from this origin or `data:` URLs (the
/// icons).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
     object-src 'none'";

/// Client-side routes: the paths (their first segment, with the number of
/// further segments each takes) that serve `index.html`.
pub const PAGES: &[(&str, usize)] = &[
    ("chat", 1),
    ("sessions", 0),
    ("models", 0),
    ("rag", 0),
    ("rag", 1),
    ("users", 0),
    ("invitations", 0),
    ("audit", 0),
    ("benchmark", 0),
    ("admin", 1),
    ("account", 0),
    ("login", 0),
    ("setup", 0),
    ("invite", 1),
];

/// One embedded file, ready to send.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The file's bytes.
    pub bytes: Cow<'static, [u8]>,
    /// The same bytes gzip-compressed, when that makes them smaller.
    pub gzip: Option<&'static [u8]>,
    /// The `Content-Type` to send.
    pub content_type: &'static str,
    /// A strong ETag (quoted), from the file's SHA-256.
    pub etag: String,
}

/// The entry page, served for `/` and every path in [`PAGES`].
///
/// # Panics
/// Never in a build of this crate: `assets/index.html` is embedded at
/// compile time and a unit test checks it is there.
pub fn index() -> Asset {
    asset("index.html").unwrap_or_else(|| Asset {
        bytes: Cow::Borrowed(b"<!doctype html><title>OffGrid</title>"),
        gzip: None,
        content_type: "text/html; charset=utf-8",
        etag: "\"missing\"".to_owned(),
    })
}

/// The embedded file at `path` (relative to the assets folder, no leading
/// slash), if there is one. Paths with `..`, backslashes or empty segments
/// are never found.
pub fn asset(path: &str) -> Option<Asset> {
    if !valid(path) {
        return None;
    }
    let file = Files::get(path)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hex(&hash[..16]));
    Some(Asset {
        bytes: file.data,
        gzip: compressed().get(path).copied(),
        content_type: content_type(path),
        etag,
    })
}

/// Every embedded path.
pub fn paths() -> impl Iterator<Item = Cow<'static, str>> {
    Files::iter()
}

/// Whether a request path (without its leading slash) is one of the UI's
/// pages.
pub fn is_page(path: &str) -> bool {
    let mut parts = path.split('/');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    if rest.iter().any(|s| s.is_empty() || s.len() > 256) {
        return false;
    }
    PAGES
        .iter()
        .any(|(name, depth)| *name == first && *depth == rest.len())
}

/// Compresses every compressible file once; later calls return at once.
/// Call it at start-up, off the async executor: it takes a few
/// milliseconds of CPU.
pub fn precompress() {
    let _ = compressed();
}

fn compressed() -> &'static HashMap<String, &'static [u8]> {
    static GZIP: OnceLock<HashMap<String, &'static [u8]>> = OnceLock::new();
    GZIP.get_or_init(|| {
        let mut out = HashMap::new();
        for path in Files::iter() {
            if !compressible(&path) {
                continue;
            }
            let Some(file) = Files::get(&path) else {
                continue;
            };
            if let Some(gz) = gzip(&file.data)
                && gz.len() < file.data.len() * 9 / 10
            {
                // Leaked once per file at start-up: the set is fixed.
                out.insert(path.into_owned(), &*Box::leak(gz.into_boxed_slice()));
            }
        }
        out
    })
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn valid(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

fn compressible(path: &str) -> bool {
    matches!(
        extension(path),
        "html" | "js" | "mjs" | "css" | "svg" | "json" | "txt" | "map"
    )
}

fn extension(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(_, e)| e)
}

fn content_type(path: &str) -> &'static str {
    match extension(path) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests;
