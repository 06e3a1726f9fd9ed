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
    /// Ollama. `None` for anything else.
    pub fn parse(text: &str) -> Option<KeepAlive> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if let Some(rest) = t.strip_prefix('-') {
            // Any well-formed negative duration means "forever".
            return (!rest.starts_with('-'))
                .then(|| KeepAlive::parse(rest))
                .flatten()
                .map(|_| KeepAlive::Forever);
        }
        if let Ok(secs) = t.parse::<f64>() {
            return KeepAlive::from_seconds(secs);
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
            total = total.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
        }
        Some(KeepAlive::For(total))
    }

    /// A number of seconds; negative means forever.
    pub fn from_seconds(secs: f64) -> Option<KeepAlive> {
        if !secs.is_finite() {
            return None;
        }
        if secs < 0.0 {
            return Some(KeepAlive::Forever);
        }
        Duration::try_from_secs_f64(secs).ok().map(KeepAlive::For)
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
        for bad in ["", "m", "5x", "five", "5 m", "1e400", "--1", "5m-"] {
            assert_eq!(KeepAlive::parse(bad), None, "{bad:?}");
        }
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
