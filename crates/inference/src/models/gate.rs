//! Bounds on embedding work and on what all anonymous guests together may
//! have in flight. Plain threads and a condition variable: embedding runs
//! on the caller's blocking thread, never on an async executor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::limits::{Admitted, PerKeyLimit};

/// How often a caller waiting for an embedding slot checks that its client
/// is still there.
const SLOT_POLL: Duration = Duration::from_millis(100);

/// Counting slots that a blocking thread waits for.
#[derive(Debug)]
struct Slots {
    taken: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// A taken slot; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.0.taken.lock().unwrap_or_else(|p| p.into_inner());
        *taken = taken.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl Slots {
    /// Waits for a free slot while `alive()` holds; `None` once it does not.
    fn take_while(self: &Arc<Self>, alive: &dyn Fn() -> bool) -> Option<Slot> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *taken < self.max {
                *taken += 1;
                return Some(Slot(self.clone()));
            }
            if !alive() {
                return None;
            }
            taken = self
                .freed
                .wait_timeout(taken, SLOT_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Bounds embedding work: at most `slots` requests embed at once, at most
/// `max_admitted` are running or waiting, and one fairness key (user or
/// guest address) has at most `per_key` of them.
#[derive(Debug)]
pub struct EmbeddingGate {
    slots: Arc<Slots>,
    per_key: PerKeyLimit,
    admitted: Arc<AtomicUsize>,
    max_admitted: usize,
}

/// Why an embedding request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingRefusal {
    /// This caller already has its share in flight.
    CallerBusy,
    /// Too many embedding requests in flight overall.
    ServerBusy,
}

/// An admitted embedding request's place; given back when dropped.
#[derive(Debug)]
pub struct EmbeddingAdmission {
    _key: Admitted,
    _more: Vec<Admitted>,
    admitted: Arc<AtomicUsize>,
    slots: Arc<Slots>,
}

impl Drop for EmbeddingAdmission {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EmbeddingAdmission {
    /// Waits (blocking) for a free slot while `alive()` holds.
    pub(crate) fn slot_while(&self, alive: &dyn Fn() -> bool) -> Option<Slot> {
        self.slots.take_while(alive)
    }

    /// Also holds `ticket` for as long as the request lives.
    pub fn with(mut self, ticket: Admitted) -> Self {
        self._more.push(ticket);
        self
    }
}

impl EmbeddingGate {
    /// A gate with `slots` concurrent requests, `max_admitted` in flight
    /// and `per_key` per caller.
    pub fn new(slots: usize, max_admitted: usize, per_key: usize) -> Self {
        EmbeddingGate {
            slots: Arc::new(Slots {
                taken: Mutex::new(0),
                freed: Condvar::new(),
                max: slots.max(1),
            }),
            per_key: PerKeyLimit::new(per_key),
            admitted: Arc::default(),
            max_admitted: max_admitted.max(1),
        }
    }

    /// Admits one request of `key`, or says why not.
    pub fn admit(&self, key: &str) -> Result<EmbeddingAdmission, EmbeddingRefusal> {
        let per_key = self
            .per_key
            .try_admit(key)
            .ok_or(EmbeddingRefusal::CallerBusy)?;
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = EmbeddingAdmission {
            _key: per_key,
            _more: Vec::new(),
            admitted: self.admitted.clone(),
            slots: self.slots.clone(),
        };
        if before >= self.max_admitted {
            return Err(EmbeddingRefusal::ServerBusy);
        }
        Ok(admission)
    }

    /// Callers with embedding requests in flight.
    pub fn callers_in_flight(&self) -> usize {
        self.per_key.keys()
    }
}

/// What all anonymous guests together may have in flight, so guests from
/// many addresses cannot fill the shared queues.
#[derive(Debug)]
pub struct GuestShare {
    /// Generation requests (key `all`): half the engine's queue.
    pub generation: PerKeyLimit,
    /// Embedding requests (key `all`): half the embedding places.
    pub embeddings: PerKeyLimit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_bounds_callers_slots_and_the_total() {
        let gate = EmbeddingGate::new(1, 3, 2);
        let a1 = gate.admit("a").expect("a1");
        let _a2 = gate.admit("a").expect("a2");
        assert_eq!(gate.admit("a").err(), Some(EmbeddingRefusal::CallerBusy));
        let _b1 = gate.admit("b").expect("b1");
        assert_eq!(gate.admit("c").err(), Some(EmbeddingRefusal::ServerBusy));
        // One slot: the second waiter gives up when its client leaves.
        let slot = a1.slot_while(&|| true).expect("free slot");
        assert!(a1.slot_while(&|| false).is_none());
        drop(slot);
        assert!(a1.slot_while(&|| false).is_some());
        drop(a1);
        assert!(gate.admit("c").is_ok(), "a place came back");
    }

    #[test]
    fn a_waiter_gets_the_slot_when_it_is_freed() {
        let gate = Arc::new(EmbeddingGate::new(1, 4, 4));
        let first = gate.admit("a").expect("a");
        let held = first.slot_while(&|| true).expect("slot");
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let second = gate.admit("b").expect("b");
                second.slot_while(&|| true).is_some()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(waiter.join().expect("join"));
    }
}
