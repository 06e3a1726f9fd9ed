//! NDJSON, as Ollama streams: one JSON object per line, no blank lines.
//! The `ollama` Python client splits lines with `str.splitlines()`, which
//! also breaks at U+0085, U+2028 and U+2029; serde_json writes those raw,
//! so [`line`] escapes them (they can only occur inside JSON strings).

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use serde::Serialize;

/// The media type of an NDJSON stream.
pub(super) const NDJSON: &str = "application/x-ndjson";

/// `value` as one NDJSON line (with its newline).
pub(super) fn line(value: &impl Serialize) -> Bytes {
    match serde_json::to_string(value) {
        Ok(json) => {
            let mut out = String::with_capacity(json.len() + 1);
            for c in json.chars() {
                match c {
                    '\u{0085}' => out.push_str("\\u0085"),
                    '\u{2028}' => out.push_str("\\u2028"),
                    '\u{2029}' => out.push_str("\\u2029"),
                    c => out.push(c),
                }
            }
            out.push('\n');
            Bytes::from(out)
        }
        // Our own plain structs always serialize; never send half a line.
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a stream line");
            Bytes::new()
        }
    }
}

/// A whole stream of one line.
pub(super) fn one_line(value: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().content_type(NDJSON).body(line(value))
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn lines_end_once_and_escape_what_splitlines_would_split() {
        let text = "a\u{2028}b\u{2029}c\u{0085}d\ne\rf";
        let bytes = line(&serde_json::json!({ "response": text }));
        let s = std::str::from_utf8(&bytes).unwrap_or_default();
        assert!(s.ends_with('\n'));
        assert_eq!(s.lines().count(), 1);
        assert!(!s.contains(['\u{2028}', '\u{2029}', '\u{0085}', '\r']));
        let back: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap_or_default();
        assert_eq!(back["response"], text);
    }
}
