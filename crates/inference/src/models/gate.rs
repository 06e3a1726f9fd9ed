//! Bounds on embedding work and on what all anonymous guests together may
//! have in flight.
//!
//! Embedding slots are handed out first come, first served: an admitted
//! request joins the line ([`EmbeddingAdmission::join_line`]) and takes a
//! slot only when one is free and it is first in line
//! ([`SlotWaiter::try_take`]). Nothing here blocks or needs a runtime: the
//! caller polls (the HTTP layer does so asynchronously, so a waiting
//! request holds no thread), and leaving the line is dropping the waiter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::limits::{Admitted, PerKeyLimit};

#[derive(Debug, Default)]
struct Line {
    taken: usize,
    waiting: VecDeque<u64>,
    next: u64,
}

/// Counting slots with a first-come, first-served line.
#[derive(Debug)]
struct Slots {
    line: Mutex<Line>,
    max: usize,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A taken slot; freed when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut line = self.0.lock();
        line.taken = line.taken.saturating_sub(1);
    }
}

/// A place in the line for a slot; leaves the line when dropped.
#[derive(Debug)]
pub struct SlotWaiter {
    id: u64,
    slots: Arc<Slots>,
}

impl SlotWaiter {
    /// The slot, if one is free and this waiter is first in line.
    pub fn try_take(&self) -> Option<Slot> {
        let mut line = self.slots.lock();
        if line.taken < self.slots.max && line.waiting.front() == Some(&self.id) {
            line.waiting.pop_front();
            line.taken += 1;
            return Some(Slot(self.slots.clone()));
        }
        None
    }
}

impl Drop for SlotWaiter {
    fn drop(&mut self) {
        let mut line = self.slots.lock();
        if let Some(i) = line.waiting.iter().position(|id| *id == self.id) {
            line.waiting.remove(i);
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
    /// Joins the line for a slot.
    pub fn join_line(&self) -> SlotWaiter {
        let mut line = self.slots.lock();
        let id = line.next;
        line.next = line.next.wrapping_add(1);
        line.waiting.push_back(id);
        SlotWaiter {
            id,
            slots: self.slots.clone(),
        }
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
                line: Mutex::new(Line::default()),
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
    fn the_gate_bounds_callers_and_the_total() {
        let gate = EmbeddingGate::new(1, 3, 2);
        let a1 = gate.admit("a").expect("a1");
        let _a2 = gate.admit("a").expect("a2");
        assert_eq!(gate.admit("a").err(), Some(EmbeddingRefusal::CallerBusy));
        let _b1 = gate.admit("b").expect("b1");
        assert_eq!(gate.admit("c").err(), Some(EmbeddingRefusal::ServerBusy));
        drop(a1);
        assert!(gate.admit("c").is_ok(), "a place came back");
    }

    #[test]
    fn slots_go_first_come_first_served_and_leavers_step_out() {
        let gate = EmbeddingGate::new(1, 8, 8);
        let (a, b, c) = (
            gate.admit("a").expect("a"),
            gate.admit("b").expect("b"),
            gate.admit("c").expect("c"),
        );
        let first = a.join_line();
        let second = b.join_line();
        let third = c.join_line();
        // Not first in line: nothing, even with a free slot.
        assert!(second.try_take().is_none());
        let held = first.try_take().expect("first in line, slot free");
        // The slot is taken: the next in line waits.
        assert!(second.try_take().is_none());
        drop(held);
        // The second leaves the line (its client went away): the third is next.
        drop(second);
        assert!(third.try_take().is_some());
    }
}
