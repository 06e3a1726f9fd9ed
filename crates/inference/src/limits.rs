//! Per-key admission limits: how much work one user (one fairness key) may
//! have in flight at once.
//!
//! Keys with nothing in flight are forgotten at once, so a stream of
//! distinct keys (guests from many addresses) cannot grow the bookkeeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Counts work in flight per key, up to a limit per key.
#[derive(Debug, Clone)]
pub struct PerKeyLimit {
    max: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One unit of a key's allowance; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

fn lock(counts: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    // The map holds plain counts: usable whatever a panicking holder left.
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PerKeyLimit {
    /// At most `max` (at least 1) units per key.
    pub fn new(max: usize) -> Self {
        PerKeyLimit {
            max: max.max(1),
            counts: Arc::default(),
        }
    }

    /// The limit per key.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes one unit for `key`; `None` when the key is at its limit.
    pub fn try_admit(&self, key: &str) -> Option<Admitted> {
        let mut counts = lock(&self.counts);
        let n = counts.entry(key.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Admitted {
            counts: self.counts.clone(),
            key: key.to_owned(),
        })
    }

    /// Keys with work in flight.
    pub fn keys(&self) -> usize {
        lock(&self.counts).len()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_forgets_idle_keys() {
        let limit = PerKeyLimit::new(2);
        let a1 = limit.try_admit("a").expect("first");
        let a2 = limit.try_admit("a").expect("second");
        assert!(limit.try_admit("a").is_none(), "third refused");
        let b = limit.try_admit("b").expect("another key");
        assert_eq!(limit.keys(), 2);
        drop(a1);
        let a3 = limit.try_admit("a").expect("room again");
        drop((a2, a3, b));
        assert_eq!(limit.keys(), 0, "idle keys are forgotten");
        for i in 0..10_000 {
            drop(limit.try_admit(&format!("guest:{i}")));
        }
        assert_eq!(limit.keys(), 0);
    }
}
