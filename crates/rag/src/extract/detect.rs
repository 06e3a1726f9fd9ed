//! What kind of document an upload is, from its bytes first and its name
//! and declared content type second.
//!
//! The rules, in order:
//! 1. Bytes starting with `%PDF-` are a PDF, whatever the name says (a PDF
//!    named `.txt` is read as the PDF it is).
//! 2. A name ending `.pdf` or a declared `application/pdf` on bytes that
//!    are not a PDF is refused ([`ExtractError::NotPdf`]): it is most
//!    likely a broken download or an error page saved as `.pdf`, and
//!    indexing it as text would index that.
//! 3. Anything else must be text (see `text.rs`); binary content is refused
//!    whatever its name.
//! 4. Text is HTML when its extension says so (`.html`, `.htm`,
//!    `.xhtml`), plain text or Markdown when its extension says so (`.txt`,
//!    `.text`, `.md`, `.markdown`); otherwise the declared type decides
//!    (`text/html`, `application/xhtml+xml`, `text/markdown`), and
//!    otherwise the content: it is HTML when, past leading whitespace and
//!    comments, it opens with `<!doctype html`, `<html`, `<head` or
//!    `<body`, or with `<?xml` and names `<html` soon after.

use super::ExtractError;

/// The kinds of document extraction reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// Plain text, kept as is.
    Text,
    /// Markdown, kept as is (its markup is little noise for embeddings).
    Markdown,
    /// An HTML page, rendered to text without scripts and styles.
    Html,
    /// A PDF, its text extracted page by page.
    Pdf,
}

impl DocumentKind {
    /// A short name for messages: "text file", "PDF"…
    pub fn label(self) -> &'static str {
        match self {
            DocumentKind::Text => "text file",
            DocumentKind::Markdown => "Markdown file",
            DocumentKind::Html => "HTML page",
            DocumentKind::Pdf => "PDF",
        }
    }
}

/// How far into a text HTML sniffing looks.
const SNIFF_CHARS: usize = 1024;

/// Whether `bytes` is a PDF by its magic number.
pub fn is_pdf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-")
}

/// The lower-cased extension of a file name, without the dot; the name
/// may carry a path with `/` or `\`.
fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| !ext.is_empty())
}

/// The media type of a declared `Content-Type`, lower case, without
/// parameters (`text/html; charset=utf-8` → `text/html`).
fn media_type(declared: Option<&str>) -> Option<String> {
    let declared = declared?.split(';').next()?.trim().to_ascii_lowercase();
    (!declared.is_empty()).then_some(declared)
}

/// Refuses a file that claims to be a PDF and is not (rule 2).
pub fn check_pdf_claim(name: &str, declared: Option<&str>) -> Result<(), ExtractError> {
    let named = extension(name).as_deref() == Some("pdf");
    let declared = media_type(declared).as_deref() == Some("application/pdf");
    if named || declared {
        Err(ExtractError::NotPdf)
    } else {
        Ok(())
    }
}

/// The kind of a document already known to be text (rule 4).
pub fn text_kind(text: &str, name: &str, declared: Option<&str>) -> DocumentKind {
    match extension(name).as_deref() {
        Some("html" | "htm" | "xhtml") => return DocumentKind::Html,
        Some("txt" | "text") => return DocumentKind::Text,
        Some("md" | "markdown") => return DocumentKind::Markdown,
        _ => {}
    }
    match media_type(declared).as_deref() {
        Some("text/html" | "application/xhtml+xml") => return DocumentKind::Html,
        Some("text/markdown" | "text/x-markdown") => return DocumentKind::Markdown,
        _ => {}
    }
    if looks_like_html(text) {
        DocumentKind::Html
    } else {
        DocumentKind::Text
    }
}

/// Whether a text opens like an HTML document.
fn looks_like_html(text: &str) -> bool {
    let end = text
        .char_indices()
        .nth(SNIFF_CHARS)
        .map_or(text.len(), |(at, _)| at);
    let head = text[..end].to_lowercase();
    let mut rest = head.trim_start();
    // Skip comments before the document (`<!-- saved from url… -->`).
    while let Some(after) = rest.strip_prefix("<!--") {
        match after.find("-->") {
            Some(close) => rest = after[close + 3..].trim_start(),
            None => return false,
        }
    }
    ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|tag| rest.starts_with(tag))
        || (rest.starts_with("<?xml") && rest.contains("<html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_decide_first_then_declared_type_then_content() {
        let html = "<!DOCTYPE html><p>hi</p>";
        assert_eq!(text_kind("plain", "a.HTM", None), DocumentKind::Html);
        assert_eq!(
            text_kind(html, "notes.txt", Some("text/html")),
            DocumentKind::Text
        );
        assert_eq!(
            text_kind("# T", "C:\\docs\\r.md", None),
            DocumentKind::Markdown
        );
        assert_eq!(
            text_kind("x", "upload", Some("text/html; charset=utf-8")),
            DocumentKind::Html
        );
        assert_eq!(text_kind(html, "upload", None), DocumentKind::Html);
        assert_eq!(text_kind(html, "page.json", None), DocumentKind::Html);
        assert_eq!(
            text_kind("hello <html>", "upload", None),
            DocumentKind::Text
        );
        assert_eq!(text_kind("a.b", "noext.", None), DocumentKind::Text);
    }

    #[test]
    fn html_is_sniffed_past_whitespace_and_comments() {
        assert!(looks_like_html("\n  <HTML lang=en>"));
        assert!(looks_like_html("<!-- saved --> \n<!-- x --><body>"));
        assert!(looks_like_html("<?xml version=\"1.0\"?>\n<html xmlns=…>"));
        assert!(!looks_like_html("<!-- never closed <html>"));
        assert!(!looks_like_html("<?xml version=\"1.0\"?><svg/>"));
        assert!(!looks_like_html(&format!("{}<html>", " x".repeat(600))));
    }

    #[test]
    fn claims_of_pdf_are_checked() {
        assert!(is_pdf(b"%PDF-1.7\n"));
        assert!(!is_pdf(b" %PDF-1.7"));
        assert_eq!(check_pdf_claim("r.PDF", None), Err(ExtractError::NotPdf));
        assert_eq!(
            check_pdf_claim("r", Some("application/pdf")),
            Err(ExtractError::NotPdf)
        );
        assert_eq!(check_pdf_claim("pdf", Some("text/plain")), Ok(()));
    }
}
