//! Bytes to text: Unicode decoding (UTF-8, or UTF-16 with its byte-order
//! mark), the refusal of binary content, and the cleanup every extracted
//! text goes through.
//!
//! Binary is told from text by NUL bytes and by the share of control
//! characters other than tab, line feed, form feed and carriage return:
//! more than [`MAX_CONTROL_PERMILLE`] per thousand is binary. Text that is
//! not UTF-8 (Latin-1, Windows-1252…) is refused with its own message:
//! guessing an 8-bit encoding would index mojibake.

use super::ExtractError;

/// The most control characters per thousand a text may have.
const MAX_CONTROL_PERMILLE: usize = 5;

/// A control character that does not belong in text.
fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')
}

/// Whether content with `stray` stray controls among `total` characters
/// (or bytes) is binary.
fn too_many_controls(stray: usize, total: usize) -> bool {
    stray * 1000 > total * MAX_CONTROL_PERMILLE
}

/// The text of `bytes`, which must be UTF-8 (a BOM is dropped) or UTF-16
/// with a BOM, and not binary.
pub fn decode(bytes: &[u8]) -> Result<String, ExtractError> {
    if let Some(utf16) = decode_utf16(bytes) {
        return utf16;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let stray = text.chars().filter(|&c| is_stray_control(c)).count();
            if text.contains('\0') || too_many_controls(stray, text.chars().count()) {
                Err(ExtractError::Binary)
            } else {
                Ok(text.to_owned())
            }
        }
        Err(_) => {
            let stray = bytes
                .iter()
                .filter(|&&b| b < 0x80 && is_stray_control(char::from(b)))
                .count();
            if bytes.contains(&0) || too_many_controls(stray, bytes.len()) {
                Err(ExtractError::Binary)
            } else {
                Err(ExtractError::NotUtf8)
            }
        }
    }
}

/// UTF-16 text with a byte-order mark, or `None` without one.
fn decode_utf16(bytes: &[u8]) -> Option<Result<String, ExtractError>> {
    let big_endian = match bytes {
        [0xFE, 0xFF, ..] => true,
        [0xFF, 0xFE, ..] => false,
        _ => return None,
    };
    let body = &bytes[2..];
    if !body.len().is_multiple_of(2) {
        return Some(Err(ExtractError::Binary));
    }
    let units = body.chunks_exact(2).map(|p| {
        let pair = [p[0], p[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let text: Result<String, _> = char::decode_utf16(units).collect();
    Some(match text {
        Ok(text) => {
            let stray = text.chars().filter(|&c| is_stray_control(c)).count();
            if text.contains('\0') || too_many_controls(stray, text.chars().count()) {
                Err(ExtractError::Binary)
            } else {
                Ok(text)
            }
        }
        Err(_) => Err(ExtractError::Binary),
    })
}

/// Line breaks as `\n`, stray control characters removed (a form feed,
/// a page break in PDFs and old text files, becomes a blank line).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\u{c}' => out.push_str("\n\n"),
            c if is_stray_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// [`normalize`], then the tidying rendered text needs: spaces at line
/// ends dropped and runs of blank lines cut to one.
pub fn tidy(text: &str) -> String {
    let normalized = normalize(text);
    let mut out = String::with_capacity(normalized.len());
    let mut blank_run = 0;
    for line in normalized.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_read_and_its_bom_dropped() {
        assert_eq!(decode(b"\xEF\xBB\xBFh\xC3\xA9"), Ok("hé".to_owned()));
        assert_eq!(
            decode(b"tab\tand\nlines\r\n"),
            Ok("tab\tand\nlines\r\n".to_owned())
        );
    }

    #[test]
    fn utf16_with_a_bom_is_read() {
        assert_eq!(decode(b"\xFF\xFEh\x00i\x00"), Ok("hi".to_owned()));
        assert_eq!(decode(b"\xFE\xFF\x00h\x00i"), Ok("hi".to_owned()));
        assert_eq!(decode(b"\xFF\xFEh\x00i"), Err(ExtractError::Binary));
        assert_eq!(
            decode(b"\xFF\xFE\x00\xD8"),
            Err(ExtractError::Binary),
            "lone surrogate"
        );
    }

    #[test]
    fn binary_and_8_bit_text_are_refused() {
        assert_eq!(
            decode(b"PK\x03\x04\x14\x00\x06\x00"),
            Err(ExtractError::Binary)
        );
        assert_eq!(decode(b"text with a \0 nul"), Err(ExtractError::Binary));
        assert_eq!(
            decode(b"ctrl \x01\x02\x03 in valid utf-8"),
            Err(ExtractError::Binary)
        );
        assert_eq!(decode(b"caf\xE9 au lait"), Err(ExtractError::NotUtf8));
        let one_in_a_thousand = format!("{}\u{1b}", "x".repeat(999));
        assert!(decode(one_in_a_thousand.as_bytes()).is_ok());
    }

    #[test]
    fn normalize_and_tidy() {
        assert_eq!(normalize("a\r\nb\rc\u{7}\u{c}d"), "a\nb\nc\n\nd");
        assert_eq!(tidy("  \n a  \n\n\n\n b \t\n\n"), "a\n\n b");
    }
}
