//! The one helper every blocking call from Python goes through.

use std::time::Duration;

use pyo3::prelude::*;
use stokehold_core::Control;

use crate::errors::{internal_error, Failure};

/// How often a blocking call looks for Ctrl-C: well inside the 100 ms a
/// user expects.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Runs `job` on a worker thread with the GIL released. Meanwhile this
/// thread polls for signals; on Ctrl-C it cancels `job` through its
/// [`Control`], waits for it to stop, and raises `KeyboardInterrupt`. Errors
/// become stokehold exceptions; a panic becomes an internal error instead
/// of crossing into Python.
pub(crate) fn run_blocking<T, F>(py: Python<'_>, job: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Control) -> Result<T, Failure> + Send,
{
    let control = Control::new();
    let mut interrupt: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|s| {
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let control = &control;
            let handle = s.spawn(move || {
                let result = job(control);
                // Wake the waiter at once (it may be in its poll sleep).
                let _ = done_tx.send(());
                result
            });
            loop {
                match done_rx.recv_timeout(SIGNAL_POLL) {
                    // Done, or the job panicked and dropped its sender.
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if interrupt.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                interrupt = Some(e);
                                control.cancel();
                            }
                        }
                    }
                }
            }
            handle.join()
        })
    });
    if let Some(e) = interrupt {
        return Err(e);
    }
    match outcome {
        Ok(result) => result.map_err(|f| f.into_pyerr(py)),
        Err(panic) => Err(internal_error(py, panic)),
    }
}
