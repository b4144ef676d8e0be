//! The helpers every blocking call from Python goes through.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use stokehold_core::Control;

use crate::errors::Failure;

/// How often a blocking call looks for Ctrl-C: well inside the 100 ms a
/// user expects.
const SIGNAL_POLL: Duration = Duration::from_millis(20);
/// How often a progress callback is called.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `job` on a helper thread with the GIL released. Meanwhile this
/// thread polls for signals (and calls `progress(done, total)` every 100
/// ms with the job's [`Control`] counters); on Ctrl-C it cancels the job
/// through its [`Control`], waits for it to stop, and raises
/// `KeyboardInterrupt`. Errors become stokehold exceptions; a panic becomes
/// an internal error instead of crossing into Python. An exception raised
/// by `progress` cancels the job and is raised.
pub(crate) fn run_blocking<T, F>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    job: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Control) -> Result<T, Failure> + Send,
{
    let control = Control::new();
    let progress = progress.map(|p| p.clone().unbind());
    let mut raised: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|s| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let control = &control;
            let handle = std::thread::Builder::new()
                .name("stokehold-call".into())
                .spawn_scoped(s, move || {
                    let result = job(control);
                    // Wake the waiter at once (it may be in its poll sleep).
                    let _ = done_tx.send(());
                    result
                })
                .expect("a thread for a blocking call");
            let mut last_progress = Instant::now();
            loop {
                match done_rx.recv_timeout(SIGNAL_POLL) {
                    // Done, or the job panicked and dropped its sender.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        if raised.is_some() {
                            continue;
                        }
                        let report =
                            progress.is_some() && last_progress.elapsed() >= PROGRESS_EVERY;
                        let result = Python::attach(|py| -> PyResult<()> {
                            py.check_signals()?;
                            if let (true, Some(p)) = (report, &progress) {
                                let (done, total) = control.progress();
                                p.call1(py, (done, total))?;
                            }
                            Ok(())
                        });
                        if report {
                            last_progress = Instant::now();
                        }
                        if let Err(e) = result {
                            raised = Some(e);
                            control.cancel();
                        }
                    }
                }
            }
            handle.join()
        })
    });
    if let Some(e) = raised {
        return Err(e);
    }
    if let Some(p) = &progress {
        let (done, total) = control.progress();
        p.call1(py, (done, total))?;
    }
    match outcome {
        Ok(result) => result.map_err(|f| f.into_pyerr(py)),
        Err(panic) => Err(Failure::Panic(stokehold_core::panic_message(&*panic)).into_pyerr(py)),
    }
}

/// Like [`run_blocking`] for a job that cannot be stopped part way (one
/// batch decoded on the spot): on Ctrl-C this returns at once and leaves
/// the job to finish on its own thread, its result dropped. The job owns
/// what it uses (`'static`), so nothing it holds outlives it unsafely.
pub(crate) fn run_detached<T, F>(py: Python<'_>, job: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("stokehold-call".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                .unwrap_or_else(|panic| {
                    Err(Failure::Panic(stokehold_core::panic_message(&*panic)))
                });
            let _ = tx.send(result);
        })
        .map_err(|e| Failure::Argument(format!("cannot start a thread: {e}")).into_pyerr(py))?;
    // A receiver is Send but not Sync: it moves into the closure.
    let outcome = py.detach(move || loop {
        match rx.recv_timeout(SIGNAL_POLL) {
            Ok(result) => return Ok(result),
            Err(RecvTimeoutError::Disconnected) => {
                return Ok(Err(Failure::Panic(
                    "the call's thread ended without a result".into(),
                )))
            }
            Err(RecvTimeoutError::Timeout) => Python::attach(|py| py.check_signals())?,
        }
    });
    match outcome {
        Ok(result) => result.map_err(|f| f.into_pyerr(py)),
        Err(interrupt) => Err(interrupt),
    }
}
