//! The queue board: every generation the engine holds, queued or running,
//! as clients may see it (`GET /v1/queue`), and its cancellation flag.
//!
//! The engine thread keeps it current: a request appears when it is
//! submitted, its position is refreshed while it waits (an estimate from the
//! scheduler's round-robin order), its generated tokens while it runs, and
//! it disappears when it ends. Cancelling sets the request's flag; the
//! engine ends it before its next step with [`FinishReason::Cancelled`],
//! queued or running.
//!
//! [`FinishReason::Cancelled`]: crate::generate::FinishReason::Cancelled

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// Where a generation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a slot.
    Queued,
    /// Generating.
    Running,
}

impl JobState {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
        }
    }
}

/// One generation on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Its id (the completion's id when the HTTP layer named it).
    pub id: String,
    /// Who asked: the engine's fairness key (`user:<id>`, `guest:<net>`).
    pub user: String,
    /// The model.
    pub model: String,
    /// When it was submitted.
    pub created_at: SystemTime,
    /// Queued or running.
    pub state: JobState,
    /// Requests that start before it (0: next); 0 once running.
    pub position: usize,
    /// Tokens generated so far.
    pub generated_tokens: usize,
    /// Queued and next in line, but waiting for room in the key/value
    /// cache (the engine's `kv_cache_mb`).
    pub waiting_for_memory: bool,
}

struct Entry {
    info: JobInfo,
    cancel: Arc<AtomicBool>,
}

/// The board, shared by the engine thread and its handles.
#[derive(Clone, Default)]
pub struct Board(Arc<Mutex<HashMap<String, Entry>>>);

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board").finish_non_exhaustive()
    }
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a queued request on the board; returns its cancellation flag.
    pub(crate) fn add(&self, id: &str, user: &str, model: &str) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        self.lock().insert(
            id.to_owned(),
            Entry {
                info: JobInfo {
                    id: id.to_owned(),
                    user: user.to_owned(),
                    model: model.to_owned(),
                    created_at: SystemTime::now(),
                    state: JobState::Queued,
                    position: 0,
                    generated_tokens: 0,
                    waiting_for_memory: false,
                },
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    /// Whether `id` is on the board.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// The request started generating.
    pub(crate) fn start(&self, id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.info.state = JobState::Running;
            e.info.position = 0;
            e.info.waiting_for_memory = false;
        }
    }

    /// Whether the queued request `id` waits for key/value cache room.
    pub(crate) fn waiting_for_memory(&self, id: &str, waiting: bool) {
        if let Some(e) = self.lock().get_mut(id) {
            e.info.waiting_for_memory = waiting;
        }
    }

    /// Tokens generated so far by running requests.
    pub(crate) fn progress<'a>(&self, counts: impl Iterator<Item = (&'a str, usize)>) {
        let mut map = self.lock();
        for (id, n) in counts {
            if let Some(e) = map.get_mut(id) {
                e.info.generated_tokens = n;
            }
        }
    }

    /// Queued requests' positions, in the order they would start.
    pub(crate) fn positions<'a>(&self, order: impl Iterator<Item = &'a str>) {
        let mut map = self.lock();
        for (position, id) in order.enumerate() {
            if let Some(e) = map.get_mut(id) {
                e.info.position = position;
            }
        }
    }

    /// The request ended.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Forgets every request (the scheduler restarted after a panic and
    /// failed all it held).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Every request on the board, oldest first.
    pub fn list(&self) -> Vec<JobInfo> {
        let mut all: Vec<JobInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Asks the engine to end `id`; the request is told with the
    /// `cancelled` finish reason. `false` when it is not on the board.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(e) => {
                e.cancel.store(true, Ordering::Release);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_and_go_and_cancel_sets_the_flag() {
        let board = Board::default();
        let flag = board.add("a", "user:1", "m");
        board.add("b", "user:2", "m");
        board.positions(["b", "a"].into_iter());
        let list = board.list();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list.iter().find(|j| j.id == "a").map(|j| j.position),
            Some(1)
        );
        board.start("a");
        board.progress([("a", 7)].into_iter());
        let a = board.list().into_iter().find(|j| j.id == "a");
        assert_eq!(
            a.map(|j| (j.state, j.generated_tokens)),
            Some((JobState::Running, 7))
        );
        assert!(board.cancel("a"));
        assert!(flag.load(Ordering::Acquire));
        board.remove("a");
        assert!(!board.cancel("a"));
        assert!(!board.contains("a") && board.contains("b"));
    }
}
