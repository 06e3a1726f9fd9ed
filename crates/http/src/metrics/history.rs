//! The recent past of the metrics, for the console's Metrics page: every
//! [`INTERVAL`] the exposition `GET /metrics` serves is read back (the
//! same data, not a second bookkeeping) and the change since the previous
//! reading becomes one point: API requests, tokens and tokens per second,
//! queue depth, latency percentiles estimated from the histogram buckets
//! (as Prometheus' `histogram_quantile` does) and tokens per user. The
//! last [`KEPT`] points are kept in memory (an hour); a restart starts
//! afresh (Prometheus is the place for a long history).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::wire::{MetricsPoint, Quantiles, UserUsagePoint};

/// How often a point is taken.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// Points kept: an hour.
pub(crate) const KEPT: usize = 360;

/// Cumulative bucket counts by upper bound, summed over every label set.
type Buckets = BTreeMap<Bound, f64>;

/// A bucket's upper bound, ordered (`+Inf` last).
#[derive(Debug, Clone, Copy)]
struct Bound(f64);

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The cumulative values of one reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reading {
    /// Seconds since the Unix epoch (the point's label).
    at: f64,
    /// Seconds on a monotonic clock (intervals are measured on it: the
    /// wall clock may step).
    mono: f64,
    api_requests: f64,
    api_errors: f64,
    prompt_tokens: f64,
    generated_tokens: f64,
    running: f64,
    queued: f64,
    models_loaded: f64,
    ttft: Buckets,
    itl: Buckets,
    e2e: Buckets,
    /// Requests and tokens by username.
    users: BTreeMap<String, (f64, f64)>,
}

/// One sample line: `name{k="v",...} value`.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a sample line of the text format (`None` for comments and lines
/// it does not understand).
fn sample(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = body.strip_prefix('}') {
                break after;
            }
            body = body.strip_prefix(',').unwrap_or(body);
            let (key, after) = body.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key, value));
            body = &after[end + 1..];
        }
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The reading an exposition gives, taken at `at` (Unix seconds) and
/// `mono` (monotonic seconds).
pub(crate) fn read(exposition: &str, at: f64, mono: f64) -> Reading {
    let mut r = Reading {
        at,
        mono,
        ..Reading::default()
    };
    for s in exposition.lines().filter_map(sample) {
        let bucket = |buckets: &mut Buckets| {
            let le = match s.label("le") {
                Some("+Inf") => f64::INFINITY,
                Some(v) => v.parse().unwrap_or(f64::INFINITY),
                None => return,
            };
            *buckets.entry(Bound(le)).or_default() += s.value;
        };
        match s.name {
            "offgrid_http_requests_total" if s.label("api") != Some("offgrid") => {
                r.api_requests += s.value;
                if s.label("status")
                    .and_then(|c| c.parse::<u16>().ok())
                    .is_some_and(|c| c >= 500)
                {
                    r.api_errors += s.value;
                }
            }
            "offgrid_prompt_tokens_total" => r.prompt_tokens += s.value,
            "offgrid_generated_tokens_total" => r.generated_tokens += s.value,
            "offgrid_generations_running" => r.running = s.value,
            "offgrid_generations_queued" => r.queued = s.value,
            "offgrid_models_loaded" => r.models_loaded = s.value,
            "offgrid_time_to_first_token_seconds_bucket" => bucket(&mut r.ttft),
            "offgrid_inter_token_latency_seconds_bucket" => bucket(&mut r.itl),
            "offgrid_generation_duration_seconds_bucket" => bucket(&mut r.e2e),
            "offgrid_user_requests_total" => {
                if let Some(user) = s.label("user") {
                    r.users.entry(user.to_owned()).or_default().0 += s.value;
                }
            }
            "offgrid_user_tokens_total" => {
                if let Some(user) = s.label("user") {
                    r.users.entry(user.to_owned()).or_default().1 += s.value;
                }
            }
            _ => {}
        }
    }
    r
}

/// The `q` quantile of the observations that fell in between two
/// cumulative bucket sets: linear within the bucket it falls in, the
/// highest finite bound when it falls past them; `None` without
/// observations.
fn quantile(before: &Buckets, after: &Buckets, q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| (le.0, (n - before.get(le).copied().unwrap_or(0.0)).max(0.0)))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in &delta {
        if *count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let share = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * share);
        }
        lower = (*le, *count);
    }
    Some(lower.0)
}

fn quantiles(before: &Buckets, after: &Buckets) -> Quantiles {
    Quantiles {
        p50: quantile(before, after, 0.5),
        p95: quantile(before, after, 0.95),
        p99: quantile(before, after, 0.99),
    }
}

/// The point between two readings.
pub(crate) fn point(before: &Reading, after: &Reading) -> MetricsPoint {
    let seconds = (after.mono - before.mono).max(0.0);
    let grew = |a: f64, b: f64| (b - a).max(0.0);
    let generated = grew(before.generated_tokens, after.generated_tokens);
    // Tokens as they were generated: one inter-token gap is observed per
    // token after a generation's first (the token counters are credited
    // when a generation ends). At least a second, so a window of a few
    // milliseconds after a sample is not a spike.
    let all = |b: &Buckets| b.get(&Bound(f64::INFINITY)).copied().unwrap_or(0.0);
    let produced = grew(all(&before.itl), all(&after.itl));
    let mut users: Vec<UserUsagePoint> = after
        .users
        .iter()
        .filter_map(|(user, (requests, tokens))| {
            let (r0, t0) = before.users.get(user).copied().unwrap_or((0.0, 0.0));
            let (requests, tokens) = (grew(r0, *requests), grew(t0, *tokens));
            (requests > 0.0 || tokens > 0.0).then(|| UserUsagePoint {
                user: user.clone(),
                requests: requests as u64,
                tokens: tokens as u64,
            })
        })
        .collect();
    users.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(a.user.cmp(&b.user)));
    MetricsPoint {
        at: after.at,
        seconds,
        requests: grew(before.api_requests, after.api_requests) as u64,
        errors: grew(before.api_errors, after.api_errors) as u64,
        prompt_tokens: grew(before.prompt_tokens, after.prompt_tokens) as u64,
        generated_tokens: generated as u64,
        tokens_per_second: produced / seconds.max(1.0),
        running: after.running as u64,
        queued: after.queued as u64,
        models_loaded: after.models_loaded as u64,
        time_to_first_token: quantiles(&before.ttft, &after.ttft),
        inter_token_latency: quantiles(&before.itl, &after.itl),
        duration: quantiles(&before.e2e, &after.e2e),
        users,
    }
}

/// The points kept and the reading the next one starts from.
#[derive(Debug, Default)]
pub(crate) struct History {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    points: VecDeque<MetricsPoint>,
    last: Option<Reading>,
}

impl History {
    /// A history whose first point starts at `at` (Unix seconds) from
    /// zero, as every counter does.
    pub(crate) fn starting_at(at: f64, mono: f64) -> Self {
        let history = History::default();
        history.record(Reading {
            at,
            mono,
            ..Reading::default()
        });
        history
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a reading: a point since the previous one is kept.
    pub(crate) fn record(&self, reading: Reading) {
        let mut kept = self.lock();
        if let Some(last) = &kept.last {
            let p = point(last, &reading);
            kept.points.push_back(p);
            while kept.points.len() > KEPT {
                kept.points.pop_front();
            }
        }
        kept.last = Some(reading);
    }

    /// The points kept, oldest first, and one from the last reading to
    /// `now` (not kept), so the page has figures at once.
    pub(crate) fn points(&self, now: &Reading) -> Vec<MetricsPoint> {
        let kept = self.lock();
        let mut points: Vec<MetricsPoint> = kept.points.iter().cloned().collect();
        if let Some(last) = &kept.last {
            points.push(point(last, now));
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Buckets {
        pairs.iter().map(|(le, n)| (Bound(*le), *n)).collect()
    }

    #[test]
    fn the_exposition_reads_back() {
        let text = r#"# TYPE offgrid_http_requests counter
offgrid_http_requests_total{route="/v1/chat/completions",method="POST",api="openai",status="200"} 4
offgrid_http_requests_total{route="/api/chat",method="POST",api="ollama",status="503"} 1
offgrid_http_requests_total{route="/v1/sessions",method="GET",api="offgrid",status="200"} 9
offgrid_generated_tokens_total{model="m",api="openai"} 30
offgrid_generations_queued 2
offgrid_time_to_first_token_seconds_bucket{le="0.1",model="m"} 1
offgrid_time_to_first_token_seconds_bucket{le="+Inf",model="m"} 2
offgrid_time_to_first_token_seconds_bucket{le="0.1",model="n"} 1
offgrid_user_tokens_total{user="al\"ice",kind="prompt"} 5
offgrid_user_tokens_total{user="al\"ice",kind="completion"} 7
offgrid_user_requests_total{user="bob"} 1
# EOF"#;
        let r = read(text, 10.0, 1.0);
        assert_eq!(r.api_requests, 5.0);
        assert_eq!(r.api_errors, 1.0);
        assert_eq!(r.generated_tokens, 30.0);
        assert_eq!(r.queued, 2.0);
        assert_eq!(r.ttft, buckets(&[(0.1, 2.0), (f64::INFINITY, 2.0)]));
        assert_eq!(r.users["al\"ice"], (0.0, 12.0));
        assert_eq!(r.users["bob"], (1.0, 0.0));
        // Nonsense is skipped, not a panic.
        for junk in [
            "x{",
            "x{a=\"b",
            "x{a=\"b\"} nan?",
            "{} 1",
            "x 1 2 3",
            "\u{0}",
        ] {
            let _ = read(junk, 0.0, 0.0);
        }
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let before = buckets(&[(0.1, 0.0), (0.2, 0.0), (f64::INFINITY, 0.0)]);
        let after = buckets(&[(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)]);
        assert_eq!(quantile(&before, &after, 0.5), Some(0.1));
        let p75 = quantile(&before, &after, 0.75).unwrap_or_default();
        assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
        // Past the last finite bound: that bound.
        let slow = buckets(&[(0.1, 0.0), (0.2, 0.0), (f64::INFINITY, 4.0)]);
        assert_eq!(quantile(&before, &slow, 0.99), Some(0.2));
        // Nothing observed in between.
        assert_eq!(quantile(&after, &after, 0.5), None);
    }

    #[test]
    fn points_are_differences_and_the_history_is_bounded() {
        let history = History::default();
        let mut r = Reading::default();
        history.record(r.clone());
        for i in 1..=(KEPT + 5) {
            r.at = i as f64 * 10.0;
            r.mono = i as f64 * 10.0;
            r.generated_tokens += 100.0;
            *r.itl.entry(Bound(f64::INFINITY)).or_default() += 100.0;
            r.users.insert("alice".into(), (i as f64, i as f64 * 3.0));
            history.record(r.clone());
        }
        let mut now = r.clone();
        now.at += 5.0;
        now.mono += 0.5;
        now.generated_tokens += 10.0;
        *now.itl.entry(Bound(f64::INFINITY)).or_default() += 10.0;
        let points = history.points(&now);
        assert_eq!(points.len(), KEPT + 1);
        assert_eq!(points[0].generated_tokens, 100);
        assert!((points[0].tokens_per_second - 10.0).abs() < 1e-9);
        assert_eq!(points[0].users[0].tokens, 3);
        let last = &points[KEPT];
        assert_eq!(last.generated_tokens, 10);
        // Half a second: counted over one, not doubled.
        assert!((last.tokens_per_second - 10.0).abs() < 1e-9);
        assert!(last.users.is_empty());
    }
}
