//! A role's default quota as one settings value:
//! `requests_per_minute=60,tokens_per_day=100000,max_concurrent=2`, any of
//! the three left out (unlimited), or `unlimited`.

use std::fmt;

/// A role's default limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleQuota {
    /// Inference requests in any 60 seconds.
    pub requests_per_minute: Option<u64>,
    /// Prompt and completion tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Generations at once.
    pub max_concurrent: Option<u64>,
}

/// The largest limit accepted.
const MAX: u64 = 1 << 40;

impl RoleQuota {
    /// No limits.
    pub const UNLIMITED: RoleQuota = RoleQuota {
        requests_per_minute: None,
        tokens_per_day: None,
        max_concurrent: None,
    };

    /// Parses the settings form; `None` if malformed, a name is unknown
    /// or repeated, or a number is 0 or above 2^40.
    pub fn parse(text: &str) -> Option<RoleQuota> {
        let text = text.trim();
        let mut q = RoleQuota::UNLIMITED;
        if text.eq_ignore_ascii_case("unlimited") || text.is_empty() {
            return Some(q);
        }
        for part in text.split(',') {
            let (name, value) = part.split_once('=')?;
            let n: u64 = value.trim().parse().ok()?;
            if !(1..=MAX).contains(&n) {
                return None;
            }
            let slot = match name.trim() {
                "requests_per_minute" => &mut q.requests_per_minute,
                "tokens_per_day" => &mut q.tokens_per_day,
                "max_concurrent" => &mut q.max_concurrent,
                _ => return None,
            };
            if slot.replace(n).is_some() {
                return None;
            }
        }
        Some(q)
    }
}

impl fmt::Display for RoleQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_day", self.tokens_per_day),
            ("max_concurrent", self.max_concurrent),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|n| format!("{name}={n}")))
        .collect();
        if parts.is_empty() {
            f.write_str("unlimited")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_form_round_trips_and_junk_is_refused() {
        let q = RoleQuota::parse("requests_per_minute=5, max_concurrent=1").expect("parses");
        assert_eq!(q.requests_per_minute, Some(5));
        assert_eq!(q.tokens_per_day, None);
        assert_eq!(q.max_concurrent, Some(1));
        assert_eq!(RoleQuota::parse(&q.to_string()), Some(q));
        assert_eq!(RoleQuota::parse("unlimited"), Some(RoleQuota::UNLIMITED));
        assert_eq!(RoleQuota::UNLIMITED.to_string(), "unlimited");
        for junk in [
            "requests_per_minute",
            "requests_per_minute=0",
            "requests_per_minute=-1",
            "requests_per_minute=1,requests_per_minute=2",
            "tokens=5",
            "max_concurrent=99999999999999999999",
            "max_concurrent=2000000000000",
        ] {
            assert_eq!(RoleQuota::parse(junk), None, "{junk}");
        }
    }
}
