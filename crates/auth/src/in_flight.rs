//! Bounds how many logins run at once per account and per client address,
//! so a burst of attempts cannot queue unbounded bcrypt work behind one key.
//! Counts live in memory only; a key's entry is removed as soon as its last
//! slot is released, so the map holds only keys with attempts in flight.

use std::collections::HashMap;
use std::sync::Mutex;

/// In-flight counts per key.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Mutex<HashMap<String, usize>>,
}

/// One attempt in flight under a key; released on drop.
#[derive(Debug)]
pub struct Slot<'a> {
    owner: &'a InFlight,
    key: String,
}

impl InFlight {
    /// An empty map.
    pub fn new() -> Self {
        InFlight::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot under `key`, or `None` when `limit` attempts already hold one.
    pub fn try_enter(&self, key: &str, limit: usize) -> Option<Slot<'_>> {
        let mut counts = self.lock();
        let count = counts.entry(key.to_owned()).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                counts.remove(key);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            owner: self,
            key: key.to_owned(),
        })
    }

    /// Attempts in flight under `key`.
    pub fn count(&self, key: &str) -> usize {
        self.lock().get(key).copied().unwrap_or(0)
    }

    /// Keys with attempts in flight (the map's size).
    pub fn keys(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut counts = self.owner.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn concurrent_holders_never_exceed_the_limit_and_entries_are_pruned() {
        // 16 threads start together and each tries to hold a slot under the
        // same key until all have tried: exactly `limit` succeed.
        let in_flight = Arc::new(InFlight::new());
        let tried = Arc::new(Barrier::new(16));
        let entered = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (in_flight, tried, entered) =
                    (in_flight.clone(), tried.clone(), entered.clone());
                std::thread::spawn(move || {
                    let slot = in_flight.try_enter("account:a", 3);
                    if slot.is_some() {
                        entered.fetch_add(1, Ordering::SeqCst);
                    }
                    tried.wait();
                    drop(slot);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join");
        }
        assert_eq!(entered.load(Ordering::SeqCst), 3);
        assert_eq!(in_flight.keys(), 0, "released keys leave the map");
    }

    #[test]
    fn keys_are_independent_and_slots_come_back() {
        let in_flight = InFlight::new();
        let a = in_flight.try_enter("addr:1", 1).expect("first");
        assert!(in_flight.try_enter("addr:1", 1).is_none());
        let b = in_flight.try_enter("addr:2", 1).expect("other key");
        assert_eq!(in_flight.count("addr:1"), 1);
        drop(a);
        assert!(in_flight.try_enter("addr:1", 1).is_some());
        drop(b);
        assert!(in_flight.try_enter("x", 0).is_none());
        assert_eq!(in_flight.keys(), 0);
    }
}
