//! Running a parser we do not trust (PDF, HTML) so that it cannot take
//! the server down: on its own thread with a large stack, under
//! `catch_unwind`, with a time limit.
//!
//! A thread cannot be killed, so one that overruns its time is abandoned:
//! the caller gets [`GuardError::Timeout`], the job is asked to stop
//! through its cancel flag (the PDF writer checks it on every write), and
//! the thread is counted until it ends. While `max_abandoned` threads are
//! still running, new jobs are refused ([`GuardError::Busy`]), so a stream
//! of documents that loop cannot take every core.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// The stack of a parsing thread: deep nesting in a document recurses in
/// some parsers, and a stack overflow aborts the whole process.
const STACK_BYTES: usize = 64 << 20;

/// The job is running and its caller still waits.
const RUNNING: u8 = 0;
/// The caller gave up waiting; the thread is counted as abandoned.
const ABANDONED: u8 = 1;
/// The job has finished.
const DONE: u8 = 2;

/// Why a guarded job gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// Too many abandoned jobs are still running, or no thread could be
    /// started.
    Busy,
    /// The job overran its time and was abandoned.
    Timeout,
    /// The job panicked, with this message.
    Panicked(String),
}

/// Runs `job` on a new thread and waits up to `timeout` for it. `job`
/// gets a flag that turns true when it is abandoned. `abandoned` counts
/// abandoned jobs still running (a static shared by all callers).
pub fn run<T, F>(
    job: F,
    timeout: Duration,
    max_abandoned: usize,
    abandoned: &'static AtomicUsize,
) -> Result<T, GuardError>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> T + Send + 'static,
{
    if abandoned.load(Ordering::SeqCst) >= max_abandoned {
        return Err(GuardError::Busy);
    }
    let state = Arc::new(AtomicU8::new(RUNNING));
    let cancel = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = mpsc::sync_channel(1);
    let (thread_state, thread_cancel) = (Arc::clone(&state), Arc::clone(&cancel));
    let spawned = thread::Builder::new()
        .name("offgrid-rag-extract".to_owned())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| job(&thread_cancel)));
            // The receiver is gone when the caller gave up: nothing to do.
            let _ = sender.send(result.map_err(panic_message));
            if thread_state.swap(DONE, Ordering::SeqCst) == ABANDONED {
                abandoned.fetch_sub(1, Ordering::SeqCst);
            }
        });
    if spawned.is_err() {
        return Err(GuardError::Busy);
    }
    let outcome = match receiver.recv_timeout(timeout) {
        Err(RecvTimeoutError::Timeout) => {
            // Counted before the state changes, so the thread's decrement
            // can never come first.
            abandoned.fetch_add(1, Ordering::SeqCst);
            let gave_up = state
                .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if gave_up {
                cancel.store(true, Ordering::SeqCst);
                return Err(GuardError::Timeout);
            }
            // It finished just now: its result is in the channel.
            abandoned.fetch_sub(1, Ordering::SeqCst);
            receiver.recv().ok()
        }
        Ok(outcome) => Some(outcome),
        Err(RecvTimeoutError::Disconnected) => None,
    };
    outcome
        .unwrap_or_else(|| Err("the worker thread ended without a result".to_owned()))
        .map_err(GuardError::Panicked)
}

/// The message of a panic payload, when it is a string.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    #[test]
    fn a_result_comes_back() {
        static ABANDONED: AtomicUsize = AtomicUsize::new(0);
        let got = run(|_| 6 * 7, Duration::from_secs(5), 1, &ABANDONED);
        assert_eq!(got, Ok(42));
    }

    #[test]
    fn a_panic_is_caught_with_its_message() {
        static ABANDONED: AtomicUsize = AtomicUsize::new(0);
        let got: Result<(), _> = run(
            |_| panic!("bad object {}", 7),
            Duration::from_secs(5),
            1,
            &ABANDONED,
        );
        assert_eq!(got, Err(GuardError::Panicked("bad object 7".to_owned())));
    }

    #[test]
    fn deep_recursion_fits_the_large_stack() {
        static ABANDONED: AtomicUsize = AtomicUsize::new(0);
        fn depth(n: u64) -> u64 {
            // 512 bytes still needed after the call: kept on the stack.
            let pad = std::hint::black_box([n; 64]);
            if n == 0 {
                return 0;
            }
            let below = depth(n - 1);
            below + std::hint::black_box(&pad)[63] + 1 - n
        }
        // About 30 MB of frames: far past the 8 MiB of a default thread.
        let got = run(|_| depth(50_000), Duration::from_secs(30), 1, &ABANDONED);
        assert_eq!(got, Ok(50_000));
    }

    #[test]
    fn an_overrun_is_abandoned_cancelled_and_counted_until_it_ends() {
        static ABANDONED: AtomicUsize = AtomicUsize::new(0);
        let (seen_cancel, seen) = mpsc::channel();
        let start = Instant::now();
        let slow = move |cancel: &AtomicBool| {
            while !cancel.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
            thread::sleep(Duration::from_millis(200));
            let _ = seen_cancel.send(());
        };
        let got = run(slow, Duration::from_millis(50), 1, &ABANDONED);
        assert_eq!(got, Err(GuardError::Timeout));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(ABANDONED.load(Ordering::SeqCst), 1);
        let refused = run(|_| 1, Duration::from_secs(5), 1, &ABANDONED);
        assert_eq!(
            refused,
            Err(GuardError::Busy),
            "one abandoned is the limit here"
        );
        assert_eq!(run(|_| 1, Duration::from_secs(5), 2, &ABANDONED), Ok(1));
        seen.recv_timeout(Duration::from_secs(5))
            .expect("the job saw its cancel flag");
        let deadline = Instant::now() + Duration::from_secs(5);
        while ABANDONED.load(Ordering::SeqCst) != 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            ABANDONED.load(Ordering::SeqCst),
            0,
            "uncounted once it ends"
        );
        assert_eq!(run(|_| 2, Duration::from_secs(5), 1, &ABANDONED), Ok(2));
    }
}
