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

/// The number of cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// At most this many threads per core: more only adds switching and memory
/// (each worker holds a few decoded images), and a typo such as 100000
/// would spend tens of seconds starting threads before any work.
pub const MAX_THREADS_PER_CORE: usize = 8;

/// The most threads a pool may have: [`MAX_THREADS_PER_CORE`] × the cores,
/// and never fewer than 16 (small machines still get an I/O-bound pool).
pub fn max_threads() -> usize {
    (cores() * MAX_THREADS_PER_CORE).max(16)
}

/// The environment variable that sets the default thread count.
pub const THREADS_ENV: &str = "STOKEHOLD_NUM_THREADS";

/// The thread count of a pool: `requested` when given, else
/// `STOKEHOLD_NUM_THREADS` when set, else the core count. `name` is the
/// caller's name for the setting (e.g. `"num_threads"`), used in errors: a
/// count of 0, one above [`max_threads`], or an environment value that is
/// not such a count is refused.
pub fn resolve_threads(requested: Option<usize>, name: &str) -> Result<usize, String> {
    let max = max_threads();
    let (n, origin) = match requested {
        Some(n) => (n, name.to_owned()),
        None => match std::env::var(THREADS_ENV) {
            Ok(v) => {
                let n = v.trim().parse::<usize>().map_err(|_| {
                    format!("{THREADS_ENV}={v:?} is not a thread count (1 to {max})")
                })?;
                (n, THREADS_ENV.to_owned())
            }
            Err(_) => return Ok(cores()),
        },
    };
    if n == 0 || n > max {
        return Err(format!(
            "{origin} must be between 1 and {max} ({MAX_THREADS_PER_CORE} per core on {} cores), got {n}",
            cores()
        ));
    }
    Ok(n)
}

/// The thread count when the caller names none and errors are not
/// wanted: [`resolve_threads`] of `None`, or the core count if the
/// environment variable is invalid.
pub fn default_threads() -> usize {
    resolve_threads(None, THREADS_ENV).unwrap_or_else(|_| cores())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_checked_and_named() {
        assert_eq!(resolve_threads(Some(3), "num_threads").unwrap(), 3);
        let err = resolve_threads(Some(0), "num_threads").unwrap_err();
        assert!(err.contains("num_threads must be between 1 and"), "{err}");
        let err = resolve_threads(Some(100_000), "--threads").unwrap_err();
        assert!(err.contains("--threads") && err.contains("100000"), "{err}");
    }
}
