//! Time as whole seconds since the Unix epoch.
//!
//! The domain takes the current time as an argument instead of reading a
//! clock, so it stays free of IO and tests can move time. In JSON a
//! timestamp is an RFC 3339 string (`2026-11-22T14:49:22Z`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds in a day, for settings and inputs given in days.
pub const SECS_PER_DAY: i64 = 86_400;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The timestamp `secs` seconds later (earlier when negative).
    pub fn plus_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs))
    }

    /// The timestamp `days` whole days later (earlier when negative).
    pub fn plus_days(self, days: i64) -> Self {
        self.plus_secs(days.saturating_mul(SECS_PER_DAY))
    }

    /// Seconds from `self` until `later` (negative if `later` is earlier).
    pub fn secs_until(self, later: Timestamp) -> i64 {
        later.0.saturating_sub(self.0)
    }

    /// RFC 3339 text in UTC; falls back to the raw number for dates
    /// `time` cannot represent.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Parses RFC 3339 text.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp(1_700_000_000);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(Timestamp::parse_rfc3339("2023-11-14T22:13:20Z"), Some(t));
        assert_eq!(t.plus_secs(10).0, 1_700_000_010);
        assert_eq!(t.secs_until(t.plus_secs(-5)), -5);
        assert_eq!(t.plus_days(2).0, 1_700_000_000 + 2 * 86_400);
        assert_eq!(t.plus_days(-1).0, 1_700_000_000 - 86_400);
        assert_eq!(t.plus_days(i64::MAX).0, i64::MAX);
    }
}
