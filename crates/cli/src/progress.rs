//! Progress bars for long jobs, drawn from a [`Control`]'s counters.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stokehold_core::Control;

/// Runs `job` on a second thread while this one draws a progress bar from
/// `control` on stderr. Nothing is drawn when `quiet` or when stderr is not
/// a terminal.
pub(crate) fn with_progress<T: Send>(
    what: &str,
    quiet: bool,
    control: &Control,
    job: impl FnOnce() -> T + Send,
) -> T {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({rate}, eta {eta})")
            .expect("valid template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    let result = std::thread::scope(|s| {
        let handle = s.spawn(job);
        while !handle.is_finished() {
            let (done, total) = control.progress();
            bar.set_length(total);
            bar.set_position(done);
            std::thread::park_timeout(Duration::from_millis(100));
        }
        handle.join()
    });
    bar.finish_and_clear();
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
