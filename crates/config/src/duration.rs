//! Ollama-style keep-alive durations: how long a model stays loaded after
//! its last request.

use std::time::Duration;

/// How long an idle model stays in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Never unload.
    Forever,
    /// Unload this long after the last request finished (zero: at once).
    For(Duration),
}

impl KeepAlive {
    /// Parses `"5m"`, `"1h30m"`, `"45s"`, `"500ms"`, `"0"`, `"-1"` or a
    /// plain number of seconds. A negative value means forever, as in
    /// Ollama. `None` for anything else, including text longer than
    /// [`KeepAlive::MAX_TEXT_LEN`] bytes.
    ///
    /// Iterative and bounded: the text can come from any client.
    pub fn parse(text: &str) -> Option<KeepAlive> {
        if text.len() > Self::MAX_TEXT_LEN {
            return None;
        }
        let t = text.trim();
        // At most one sign, directly before the value.
        let (negative, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let parsed = Self::parse_unsigned(t)?;
        Some(if negative {
            // Any well-formed negative duration means "forever".
            KeepAlive::Forever
        } else {
            parsed
        })
    }

    /// The longest text [`KeepAlive::parse`] accepts.
    pub const MAX_TEXT_LEN: usize = 64;

    /// The longest finite keep-alive; longer ones are clamped to it (use
    /// `-1` to keep a model loaded for good).
    pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

    fn clamped(d: Duration) -> KeepAlive {
        KeepAlive::For(d.min(Self::MAX_DURATION))
    }

    /// An unsigned number of seconds or a sequence of `<number><unit>`.
    fn parse_unsigned(t: &str) -> Option<KeepAlive> {
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return KeepAlive::from_seconds(t.parse::<f64>().ok()?);
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let value: f64 = rest[..end].parse().ok()?;
            rest = &rest[end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let secs = match &rest[..unit_end] {
                "ms" => value / 1000.0,
                "s" => value,
                "m" => value * 60.0,
                "h" => value * 3600.0,
                _ => return None,
            };
            rest = &rest[unit_end..];
            total =
                total.saturating_add(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
        }
        Some(Self::clamped(total))
    }

    /// A number of seconds; negative means forever; clamped to
    /// [`KeepAlive::MAX_DURATION`]. `None` for NaN and infinities.
    pub fn from_seconds(secs: f64) -> Option<KeepAlive> {
        if !secs.is_finite() {
            return None;
        }
        if secs < 0.0 {
            return Some(KeepAlive::Forever);
        }
        // Past what a `Duration` holds is still "a very long time".
        Some(Self::clamped(
            Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
        ))
    }
}

impl std::fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepAlive::Forever => f.write_str("-1"),
            KeepAlive::For(d) if d.subsec_millis() != 0 => write!(f, "{}ms", d.as_millis()),
            KeepAlive::For(d) => {
                let s = d.as_secs();
                if s > 0 && s % 3600 == 0 {
                    write!(f, "{}h", s / 3600)
                } else if s > 0 && s % 60 == 0 {
                    write!(f, "{}m", s / 60)
                } else {
                    write!(f, "{s}s")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_forms_parse() {
        let secs = |s| Some(KeepAlive::For(Duration::from_secs(s)));
        assert_eq!(KeepAlive::parse("5m"), secs(300));
        assert_eq!(KeepAlive::parse("1h30m"), secs(5400));
        assert_eq!(KeepAlive::parse("45s"), secs(45));
        assert_eq!(KeepAlive::parse("30"), secs(30));
        assert_eq!(KeepAlive::parse("0"), secs(0));
        assert_eq!(
            KeepAlive::parse("1.5s"),
            Some(KeepAlive::For(Duration::from_millis(1500)))
        );
        assert_eq!(
            KeepAlive::parse("250ms"),
            Some(KeepAlive::For(Duration::from_millis(250)))
        );
        assert_eq!(KeepAlive::parse("-1"), Some(KeepAlive::Forever));
        assert_eq!(KeepAlive::parse("-5m"), Some(KeepAlive::Forever));
        for bad in ["", "m", "5x", "five", "5 m", "--1", "5m-"] {
            assert_eq!(KeepAlive::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hostile_text_is_refused_without_recursion() {
        // Once recursed per leading '-': a stack overflow from one request.
        let dashes = "- ".repeat(100_000) + "1";
        assert_eq!(KeepAlive::parse(&dashes), None);
        let dashes = "-".repeat(100_000) + "1";
        assert_eq!(KeepAlive::parse(&dashes), None);
        // Long but otherwise well-formed text is refused by length.
        let long = "1s".repeat(KeepAlive::MAX_TEXT_LEN);
        assert_eq!(KeepAlive::parse(&long), None);
        for bad in ["- 1", "-", "+5", "1e3", "inf", "NaN", "-inf", ".", "5..1s"] {
            assert_eq!(KeepAlive::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_values_are_clamped() {
        let max = Some(KeepAlive::For(KeepAlive::MAX_DURATION));
        assert_eq!(KeepAlive::from_seconds(1e19), max);
        assert_eq!(KeepAlive::from_seconds(f64::MAX), max);
        assert_eq!(KeepAlive::parse("99999999999999999999h"), max);
        assert_eq!(KeepAlive::parse("10000000000000000000"), max);
        assert_eq!(KeepAlive::from_seconds(f64::NAN), None);
        assert_eq!(KeepAlive::from_seconds(f64::INFINITY), None);
    }

    #[test]
    fn display_round_trips() {
        for text in ["5m", "2h", "45s", "0s", "-1", "1500ms"] {
            let k = KeepAlive::parse(text).expect("unexpected error");
            assert_eq!(k.to_string(), text);
            assert_eq!(KeepAlive::parse(&k.to_string()), Some(k));
        }
    }
}
