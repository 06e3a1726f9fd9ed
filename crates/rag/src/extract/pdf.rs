//! A PDF's text, with `pdf-extract` (over `lopdf`). Meant to run inside
//! [`super::guard`]: pdf-extract panics on many malformed files.
//!
//! Encryption: a PDF whose content opens with the empty user password
//! (encrypted only to restrict printing or copying) is decrypted and read
//! as any viewer would; one that needs a password is refused
//! ([`ExtractError::Encrypted`]). The text is written into a bounded
//! sink, so a small file that expands to an enormous text stops at the
//! character limit instead of filling memory.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use pdf_extract::{Document, Error as PdfError, PlainTextOutput, output_doc};

use super::{DocumentKind, ExtractError};

/// Most bytes a character takes in UTF-8.
const MAX_UTF8_BYTES: usize = 4;

/// The text of the PDF `bytes`, at most `max_chars` characters (longer is
/// [`ExtractError::TooLong`]). Stops early once `cancel` is set.
pub fn text(bytes: &[u8], max_chars: usize, cancel: &AtomicBool) -> Result<String, ExtractError> {
    let document = Document::load_mem(bytes).map_err(|e| load_error(bytes, &e))?;
    // lopdf decrypts on load when the empty password opens the file; a
    // document still encrypted needs a real password.
    if document.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let mut sink = Sink {
        out: Vec::new(),
        limit: max_chars.saturating_mul(MAX_UTF8_BYTES),
        cancel,
        overflowed: false,
    };
    let written = {
        let mut output = PlainTextOutput::new(&mut sink as &mut dyn Write);
        output_doc(&document, &mut output)
    };
    if sink.overflowed {
        return Err(ExtractError::TooLong { max: max_chars });
    }
    if cancel.load(Ordering::SeqCst) {
        return Err(ExtractError::Timeout);
    }
    if let Err(e) = written {
        return Err(malformed(&e.to_string()));
    }
    let text = String::from_utf8_lossy(&sink.out).into_owned();
    if text.chars().count() > max_chars {
        return Err(ExtractError::TooLong { max: max_chars });
    }
    Ok(text)
}

/// The error for a PDF lopdf could not load: encrypted when the error or
/// the file says so, malformed otherwise.
fn load_error(bytes: &[u8], error: &PdfError) -> ExtractError {
    let encrypted = matches!(
        error,
        PdfError::Decryption(_)
            | PdfError::InvalidPassword
            | PdfError::UnsupportedSecurityHandler(_)
    ) || bytes.windows(b"/Encrypt".len()).any(|w| w == b"/Encrypt");
    if encrypted {
        ExtractError::Encrypted
    } else {
        malformed(&error.to_string())
    }
}

/// [`ExtractError::Malformed`] for a PDF.
fn malformed(detail: &str) -> ExtractError {
    ExtractError::malformed(DocumentKind::Pdf, detail)
}

/// Where pdf-extract writes: refuses bytes past `limit` and any write
/// once `cancel` is set, which ends the extraction with an error.
struct Sink<'a> {
    out: Vec<u8>,
    limit: usize,
    cancel: &'a AtomicBool,
    overflowed: bool,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        if self.out.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("text over the limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
