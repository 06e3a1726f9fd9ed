//! An HTML page's text, with `html2text` (over `html5ever`, the HTML5
//! parsing algorithm browsers use): what a reader sees, without scripts,
//! styles, comments or markup, tables read cell by cell, lines not
//! wrapped. Meant to run inside [`super::guard`].
//!
//! html5ever's tree building is quadratic in nesting depth (20,000 nested
//! `<div>`s take seconds, 100,000 a minute), so the page is fed to it
//! through a reader that fails once the guard cancels the job: an
//! abandoned parse stops at its next 4 KiB read instead of running on.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{DocumentKind, ExtractError};

/// The line width html2text renders to: wide enough that no paragraph is
/// wrapped (the chunker wants line breaks only where the page has them).
const WIDTH: usize = 100_000;

/// The text of the HTML page `html`; stops early once `cancel` is set.
pub fn text(html: &str, cancel: &AtomicBool) -> Result<String, ExtractError> {
    let input = Cancellable {
        rest: html.as_bytes(),
        cancel,
    };
    let rendered = html2text::config::plain_no_decorate()
        .raw_mode(true)
        .no_link_wrapping()
        .link_footnotes(false)
        .allow_width_overflow()
        .string_from_read(input, WIDTH);
    if cancel.load(Ordering::SeqCst) {
        return Err(ExtractError::Timeout);
    }
    rendered.map_err(|e| ExtractError::malformed(DocumentKind::Html, &e.to_string()))
}

/// A reader over bytes that fails once `cancel` is set.
struct Cancellable<'a> {
    rest: &'a [u8],
    cancel: &'a AtomicBool,
}

impl Read for Cancellable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        self.rest.read(buf)
    }
}
