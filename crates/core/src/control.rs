//! Progress and cancellation shared between a long job and its caller.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Progress counters and a cancel flag for one long-running job.
///
/// The job bumps the counters and checks [`Control::is_cancelled`] between
/// items; the caller polls [`Control::progress`] from another thread to draw
/// a progress bar and calls [`Control::cancel`] on Ctrl-C. Plain atomics:
/// polling never blocks the workers.
#[derive(Debug, Default)]
pub struct Control {
    cancelled: AtomicBool,
    total: AtomicU64,
    done: AtomicU64,
}

impl Control {
    /// A fresh control: nothing done, not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop as soon as it can.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Control::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Starts a new phase of `total` items and resets the done counter.
    pub fn start(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// Records `n` more items done.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// `(done, total)` of the current phase.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// The number of worker threads to use when the caller names none:
/// `STOKEHOLD_NUM_THREADS` when it is set to a positive integer, else the
/// number of cores this process may use.
pub fn default_threads() -> usize {
    std::env::var("STOKEHOLD_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
