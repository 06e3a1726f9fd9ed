//! Text from an uploaded document: plain text and Markdown as they are,
//! HTML rendered to what a reader sees, PDF through its text layer.
//!
//! The kind comes from the content first (see `detect.rs` for the rules):
//! a PDF is read as a PDF whatever its name, a file named `.pdf` that is
//! not one is refused, binary content is refused whatever its name. The
//! PDF and HTML parsers run on a guarded thread (`guard.rs`): a panic in
//! them becomes [`ExtractError::Malformed`], an overrun
//! [`ExtractError::Timeout`]. Every error's message is one line meant for
//! the user who uploaded the file.

mod detect;
mod guard;
mod html;
mod pdf;
mod text;

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use thiserror::Error;

pub use detect::DocumentKind;

/// Bounds on one extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// The largest file accepted, in bytes. Default 20 MiB.
    pub max_bytes: usize,
    /// The longest text accepted, in characters; a longer text is an
    /// error, never truncated. Default 20 Mi, as many as the largest text
    /// file has bytes; it mostly bounds PDFs, whose compressed text can
    /// be far larger than the file.
    pub max_chars: usize,
    /// How long parsing a PDF or an HTML page may take. Default 60 s.
    pub timeout: Duration,
    /// How many overrun parser threads (which cannot be stopped, see
    /// `guard.rs`) may still be running, process-wide, before new PDF and
    /// HTML extractions are refused with [`ExtractError::Busy`] (0 refuses
    /// them all). Default 2.
    pub max_abandoned: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_bytes: 20 << 20,
            max_chars: 20 << 20,
            timeout: Duration::from_secs(60),
            max_abandoned: 2,
        }
    }
}

/// Why a document gave no text. The messages are for the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExtractError {
    /// The file is over [`ExtractLimits::max_bytes`].
    #[error("the file is {}, over the {} limit", megabytes(*size), megabytes(*max))]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The content is binary: not a text, Markdown, HTML or PDF document,
    /// whatever its name.
    #[error("the file is not a text, Markdown, HTML or PDF document (its content is binary)")]
    Binary,
    /// Text in an encoding other than UTF-8 or UTF-16.
    #[error("the file is not UTF-8 text: save it as UTF-8 and upload it again")]
    NotUtf8,
    /// Named `.pdf` or declared `application/pdf`, but not a PDF.
    #[error(
        "the file is named or declared as a PDF but is not one (it may be damaged or incomplete)"
    )]
    NotPdf,
    /// A PDF that needs a password to open.
    #[error("the PDF is password-protected: upload a copy without a password")]
    Encrypted,
    /// The parser could not read the document.
    #[error("the {} could not be read: {detail}", kind.label())]
    Malformed {
        /// What it was read as.
        kind: DocumentKind,
        /// Why, in a few words.
        detail: String,
    },
    /// Parsing took longer than [`ExtractLimits::timeout`].
    #[error("reading the document took too long (it may be damaged)")]
    Timeout,
    /// Too many earlier documents are still being parsed.
    #[error("too many documents are being processed: try again in a few minutes")]
    Busy,
    /// Nothing but whitespace came out.
    #[error("{}", empty_message(*kind))]
    Empty {
        /// What it was read as.
        kind: DocumentKind,
    },
    /// The text is over [`ExtractLimits::max_chars`].
    #[error("the document's text is longer than the limit of {max} characters")]
    TooLong {
        /// The limit in characters.
        max: usize,
    },
}

impl ExtractError {
    /// [`ExtractError::Malformed`] with `detail` cut to one short line.
    fn malformed(kind: DocumentKind, detail: &str) -> Self {
        const MAX_DETAIL: usize = 120;
        let line = detail.lines().next().unwrap_or_default().trim();
        let mut detail: String = line.chars().take(MAX_DETAIL).collect();
        if detail.len() < line.len() {
            detail.push('…');
        }
        if detail.is_empty() {
            detail = "unknown error".to_owned();
        }
        ExtractError::Malformed { kind, detail }
    }
}

/// The message of [`ExtractError::Empty`].
fn empty_message(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Pdf => {
            "no text was found in the PDF (a scanned PDF needs text recognition, which is not supported)"
        }
        _ => "no text was found in the document",
    }
}

/// `bytes` in binary megabytes, as people say them: `20 MB`, `25.3 MB`.
fn megabytes(bytes: usize) -> String {
    let mb = bytes as f64 / f64::from(1u32 << 20);
    if mb.fract() == 0.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{mb:.1} MB")
    }
}

/// A document's text and the kind it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// What the document was read as.
    pub kind: DocumentKind,
    /// Its text, line breaks as `\n`, without control characters.
    pub text: String,
}

/// Abandoned parser threads still running, in this process.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// The share (per thousand) of the non-space characters of a PDF's text
/// that may be U+FFFD, the mark of a glyph without a Unicode mapping.
const MAX_UNDECODED_PERMILLE: usize = 100;

/// The text of an uploaded document. `name` is the file name (a path is
/// fine), `declared_content_type` the type the client declared, if any;
/// the content decides first (see the module docs).
///
/// # Errors
/// An [`ExtractError`] whose message is meant for the uploader.
pub fn extract(
    bytes: &[u8],
    name: &str,
    declared_content_type: Option<&str>,
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    extract_document(bytes, name, declared_content_type, limits).map(|d| d.text)
}

/// [`extract`], also saying what the document was read as.
///
/// # Errors
/// As [`extract`].
pub fn extract_document(
    bytes: &[u8],
    name: &str,
    declared_content_type: Option<&str>,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    if bytes.len() > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let (kind, text) = if detect::is_pdf(bytes) {
        let owned = bytes.to_vec();
        let max_chars = limits.max_chars;
        let raw = guarded(DocumentKind::Pdf, limits, move |cancel| {
            pdf::text(&owned, max_chars, cancel)
        })?;
        (DocumentKind::Pdf, check_decoded(text::tidy(&raw))?)
    } else {
        detect::check_pdf_claim(name, declared_content_type)?;
        let raw = text::decode(bytes)?;
        match detect::text_kind(&raw, name, declared_content_type) {
            DocumentKind::Html => {
                let rendered = guarded(DocumentKind::Html, limits, move |cancel| {
                    html::text(&raw, cancel)
                })?;
                (DocumentKind::Html, text::tidy(&rendered))
            }
            kind => (kind, text::normalize(&raw)),
        }
    };
    if text.trim().is_empty() {
        return Err(ExtractError::Empty { kind });
    }
    if text.chars().count() > limits.max_chars {
        return Err(ExtractError::TooLong {
            max: limits.max_chars,
        });
    }
    Ok(Extracted { kind, text })
}

/// Runs a parser on a guarded thread, its failures as [`ExtractError`]s.
fn guarded<F>(kind: DocumentKind, limits: &ExtractLimits, parse: F) -> Result<String, ExtractError>
where
    F: FnOnce(&std::sync::atomic::AtomicBool) -> Result<String, ExtractError> + Send + 'static,
{
    match guard::run(parse, limits.timeout, limits.max_abandoned, &ABANDONED) {
        Ok(parsed) => parsed,
        Err(guard::GuardError::Busy) => Err(ExtractError::Busy),
        Err(guard::GuardError::Timeout) => {
            tracing::warn!(kind = kind.label(), timeout = ?limits.timeout, "document parser overran its time; thread abandoned");
            Err(ExtractError::Timeout)
        }
        Err(guard::GuardError::Panicked(message)) => {
            tracing::warn!(kind = kind.label(), panic = %message, "document parser panicked");
            Err(ExtractError::malformed(
                kind,
                "its structure is not supported",
            ))
        }
    }
}

/// Refuses a PDF text that is mostly glyphs without a Unicode mapping.
fn check_decoded(text: String) -> Result<String, ExtractError> {
    let (mut shown, mut undecoded) = (0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        shown += 1;
        undecoded += usize::from(c == char::REPLACEMENT_CHARACTER);
    }
    if undecoded * 1000 > shown * MAX_UNDECODED_PERMILLE {
        Err(ExtractError::malformed(
            DocumentKind::Pdf,
            "its fonts do not say which characters they draw",
        ))
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests;
