//! A counting semaphore for blocking threads: caps how many bcrypt
//! computations run at once so logins cannot take every core.

use std::sync::{Condvar, Mutex};

/// At most `permits` holders at a time; others wait.
#[derive(Debug)]
pub struct Limiter {
    available: Mutex<usize>,
    freed: Condvar,
}

/// Returned by [`Limiter::acquire`]; releases the permit on drop.
#[derive(Debug)]
pub struct Permit<'a>(&'a Limiter);

impl Limiter {
    /// A limiter with `permits` (at least 1) slots.
    pub fn new(permits: usize) -> Self {
        Limiter {
            available: Mutex::new(permits.max(1)),
            freed: Condvar::new(),
        }
    }

    /// A limiter sized for password hashing on this machine: one core less
    /// than available, at least one.
    pub fn for_hashing() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limiter::new(cores.saturating_sub(1).max(1))
    }

    /// Blocks until a slot is free.
    pub fn acquire(&self) -> Permit<'_> {
        let mut n = self
            .available
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *n == 0 {
            n = self
                .freed
                .wait(n)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *n -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut n = self
            .0
            .available
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *n += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_permits_at_once() {
        let limiter = Arc::new(Limiter::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, inside, peak) = (limiter.clone(), inside.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _permit = limiter.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
