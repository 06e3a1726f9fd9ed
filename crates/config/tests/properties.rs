//! Property tests of `KeepAlive::parse`, which reads the `keep_alive` of any
//! chat or embeddings request (guests included): any text gives `Some` or
//! `None`, never a panic or a crash, and well-formed durations mean what they
//! say. A few cases by default (CI); `cargo xtask fuzz` sets
//! `PROPTEST_CASES` to run many. Failing seeds are saved to
//! `properties.proptest-regressions` beside this file and replayed first.

use std::time::Duration;

use offgrid_config::KeepAlive;
use proptest::prelude::*;

/// `PROPTEST_CASES` when set (`cargo xtask fuzz`), else `default_cases`.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// What a parsed duration becomes: at most a year (`-1` is forever).
fn clamped(d: Duration) -> KeepAlive {
    KeepAlive::For(d.min(KeepAlive::MAX_DURATION))
}

/// The units and their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];

/// Text made of what the parser looks for: signs, spaces, digits, dots,
/// unit letters, plus a few strangers.
fn duration_like(max_len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "-",
            " ",
            "\t",
            "0",
            "1",
            "5",
            "9",
            ".",
            "ms",
            "s",
            "m",
            "h",
            "e",
            "+",
            "inf",
            "NaN",
            "é",
            "\u{0}",
            "1e400",
            "99999999999999999999",
        ]),
        0..max_len,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Some(k) = KeepAlive::parse(&text) {
            let _ = k.to_string();
        }
    }

    #[test]
    fn short_duration_like_text_never_panics(text in duration_like(48)) {
        if let Some(k) = KeepAlive::parse(&text) {
            // What the server shows for a parsed value parses again.
            prop_assert!(KeepAlive::parse(&k.to_string()).is_some(), "{} -> {}", text, k);
        }
    }

    #[test]
    fn composed_durations_add_up(
        parts in proptest::collection::vec((0u64..100_000, 0usize..4), 1..6),
        pad in "[ \\t]{0,3}",
    ) {
        let mut text = pad.clone();
        let mut millis = 0u64;
        for (value, unit) in &parts {
            let (name, ms) = UNITS[*unit];
            text.push_str(&format!("{value}{name}"));
            millis += value * ms;
        }
        text.push_str(&pad);
        prop_assert_eq!(
            KeepAlive::parse(&text),
            Some(clamped(Duration::from_millis(millis))),
            "{:?}", text
        );
    }

    #[test]
    fn plain_seconds_and_negatives(secs in 0u64..1_000_000_000, unit in 0usize..4) {
        prop_assert_eq!(
            KeepAlive::parse(&secs.to_string()),
            Some(clamped(Duration::from_secs(secs)))
        );
        let negative = format!("-{secs}{}", UNITS[unit].0);
        prop_assert_eq!(KeepAlive::parse(&negative), Some(KeepAlive::Forever));
        // Only one sign: two or more is not a duration.
        prop_assert_eq!(KeepAlive::parse(&format!("-{negative}")), None);
    }

    #[test]
    fn whole_units_display_round_trip(n in 0u64..10_000_000, unit in 0usize..4) {
        let k = clamped(Duration::from_millis(n * UNITS[unit].1));
        prop_assert_eq!(KeepAlive::parse(&k.to_string()), Some(k));
    }

    #[test]
    fn numbers_as_seconds_never_panic(secs in any::<f64>()) {
        match KeepAlive::from_seconds(secs) {
            Some(KeepAlive::Forever) => prop_assert!(secs < 0.0),
            Some(KeepAlive::For(d)) => prop_assert!(secs >= 0.0 && d.as_secs_f64().is_finite()),
            None => prop_assert!(!secs.is_finite() || secs >= 0.0),
        }
    }
}

proptest! {
    // Each case runs in a child process (proptest's `fork`), so a stack
    // overflow, which aborts the process, is a failing case with a seed
    // instead of a dead test binary.
    #![proptest_config(ProptestConfig { fork: true, ..config(16) })]

    /// Issue 7, defect 1: `"- - - … 1"` recursed once per `-` and a request
    /// body of that shape overflowed the stack of a server worker.
    #[test]
    fn long_runs_of_signs_and_spaces_never_crash(
        repeats in 1usize..300_000,
        unit in "- |-|--| -|  ",
        tail in "[0-9]{0,3}[smh]{0,2}",
    ) {
        let text = format!("{}{tail}", unit.repeat(repeats));
        prop_assert!(KeepAlive::parse(&text) != Some(KeepAlive::For(Duration::MAX)));
    }
}
