//! Tests of extraction through its entry point, for text, Markdown, HTML
//! and the refusals; PDFs are in `tests/pdf.rs`, built with lopdf.

use super::*;

fn limits() -> ExtractLimits {
    ExtractLimits::default()
}

fn read(bytes: &[u8], name: &str) -> Result<Extracted, ExtractError> {
    extract_document(bytes, name, None, &limits())
}

#[test]
fn text_and_markdown_are_kept_with_lf_line_breaks() {
    let got = read(b"\xEF\xBB\xBFTitle\r\n\r\nBody\rend\n", "notes.txt");
    assert_eq!(
        got,
        Ok(Extracted {
            kind: DocumentKind::Text,
            text: "Title\n\nBody\nend\n".to_owned()
        })
    );
    let md = read(b"# Head\n\n* item  \n", "README.md").expect("markdown");
    assert_eq!(md.kind, DocumentKind::Markdown);
    assert_eq!(md.text, "# Head\n\n* item  \n");
}

const PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Cats</title>
<style>body { color: red } .secret-style {}</style>
<script>var secretScript = "do not index";</script>
</head><body>
<!-- a comment -->
<h1>About cats</h1>
<p>Cats are <b>small</b> carnivores &amp; good company.</p>
<noscript>enable-javascript</noscript>
<script type="module">import("secretModule")</script>
<table><tr><td>Name</td><td>Tom</td></tr></table>
<p>Second paragraph with a <a href="https://example.invalid/x">link</a>.</p>
</body></html>"#;

#[test]
fn html_is_rendered_without_scripts_styles_or_markup() {
    let got = read(PAGE.as_bytes(), "page.html").expect("html");
    assert_eq!(got.kind, DocumentKind::Html);
    let text = got.text;
    for wanted in [
        "About cats",
        "Cats are small carnivores & good company.",
        "Tom",
        "link",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from {text:?}");
    }
    for unwanted in ["secret", "color", "<", "comment", "example.invalid"] {
        assert!(!text.contains(unwanted), "{unwanted:?} in {text:?}");
    }
    assert!(!text.contains("\n\n\n"), "{text:?}");
}

#[test]
fn html_is_found_by_content_or_declared_type_without_an_extension() {
    let sniffed = read(PAGE.as_bytes(), "upload").expect("sniffed");
    assert_eq!(sniffed.kind, DocumentKind::Html);
    let declared = extract_document(b"<p>hi</p>", "upload", Some("text/html"), &limits());
    assert_eq!(
        declared.map(|d| (d.kind, d.text)),
        Ok((DocumentKind::Html, "hi".to_owned()))
    );
    let as_text = read(b"<p>hi</p>", "snippet.txt").expect("text");
    assert_eq!(as_text.text, "<p>hi</p>", "a .txt is kept as written");
}

#[test]
fn deeply_nested_html_is_read_or_stopped_in_time() {
    let nested = |n: usize| format!("<html><body>{}deep</body></html>", "<div>".repeat(n));
    let got = read(nested(2_000).as_bytes(), "deep.html");
    assert_eq!(got.map(|d| d.text), Ok("deep".to_owned()));
    // html5ever is quadratic in depth: this takes about a minute.
    let quick = ExtractLimits {
        timeout: Duration::from_millis(300),
        ..limits()
    };
    let start = std::time::Instant::now();
    let got = extract(nested(100_000).as_bytes(), "deep.html", None, &quick);
    assert_eq!(got, Err(ExtractError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(5));
    // The abandoned parse stops at its next read (no other test overruns).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ABANDONED.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        assert!(std::time::Instant::now() < deadline, "the parse went on");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn binary_named_txt_and_fake_pdfs_are_refused() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10";
    assert_eq!(read(png, "photo.txt"), Err(ExtractError::Binary));
    assert_eq!(
        read(b"PK\x03\x04\x14\0\x06\0\x08\0", "report.docx"),
        Err(ExtractError::Binary)
    );
    assert_eq!(
        read(b"<html>login</html>", "paper.pdf"),
        Err(ExtractError::NotPdf)
    );
    let declared = extract_document(b"plain", "paper", Some("application/pdf"), &limits());
    assert_eq!(declared, Err(ExtractError::NotPdf));
    assert_eq!(read(b"na\xEFve", "latin1.txt"), Err(ExtractError::NotUtf8));
}

#[test]
fn empty_too_large_and_too_long_are_errors_not_truncations() {
    assert_eq!(
        read(b" \n\t\r\n", "blank.txt"),
        Err(ExtractError::Empty {
            kind: DocumentKind::Text
        })
    );
    assert_eq!(
        read(b"<html><script>x()</script></html>", "s.html"),
        Err(ExtractError::Empty {
            kind: DocumentKind::Html
        })
    );
    let small = ExtractLimits {
        max_bytes: 10,
        max_chars: 4,
        ..limits()
    };
    assert_eq!(
        extract(b"12345678901", "a.txt", None, &small),
        Err(ExtractError::TooLarge { size: 11, max: 10 })
    );
    assert_eq!(
        extract("héllo".as_bytes(), "a.txt", None, &small),
        Err(ExtractError::TooLong { max: 4 })
    );
    assert_eq!(
        extract("héll".as_bytes(), "a.txt", None, &small),
        Ok("héll".to_owned())
    );
}

#[test]
fn messages_are_one_line_and_speak_to_the_user() {
    let errors = [
        ExtractError::TooLarge {
            size: 26_500_000,
            max: 20 << 20,
        },
        ExtractError::Binary,
        ExtractError::NotUtf8,
        ExtractError::NotPdf,
        ExtractError::Encrypted,
        ExtractError::malformed(DocumentKind::Pdf, "Xref table error\nat byte 7"),
        ExtractError::malformed(DocumentKind::Html, ""),
        ExtractError::Timeout,
        ExtractError::Busy,
        ExtractError::Empty {
            kind: DocumentKind::Pdf,
        },
        ExtractError::TooLong { max: 100 },
    ];
    for e in &errors {
        let message = e.to_string();
        assert!(
            !message.contains('\n') && message.len() < 140,
            "{message:?}"
        );
    }
    assert_eq!(
        errors[0].to_string(),
        "the file is 25.3 MB, over the 20 MB limit"
    );
    assert_eq!(
        errors[5].to_string(),
        "the PDF could not be read: Xref table error"
    );
    assert_eq!(
        errors[6].to_string(),
        "the HTML page could not be read: unknown error"
    );
    let long = ExtractError::malformed(DocumentKind::Pdf, &"x".repeat(500)).to_string();
    assert!(long.ends_with('…') && long.len() < 160, "{long}");
}
