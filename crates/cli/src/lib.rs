//! The `stokehold` command-line tool.
//!
//! Glue only: argument parsing, progress bars and output files around the
//! library crates. [`run`] is the whole program, so the same tool is both
//! the `stokehold` binary and the `stokehold` command that the Python
//! package installs.
//!
//! ```no_run
//! let code = stokehold_cli::run(["stokehold", "index", "data/", "-o", "m.jsonl"], &Default::default());
//! std::process::exit(code);
//! ```

mod commands;
mod progress;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;
use stokehold_core::Control;

pub use commands::Cli;

/// Exit status for a run stopped by Ctrl-C (128 + SIGINT).
pub const EXIT_CANCELLED: i32 = 130;

/// What the host program adds to the command line. The Python package
/// runs `pack --engine ray` through `stokehold.ray.pack`; the plain binary
/// has no engine but the local one.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Runs a pack on Ray: given the command's options as a JSON object
    /// (the names of `stokehold.ray.pack`'s arguments), returns a one-line
    /// summary for stdout.
    #[allow(clippy::type_complexity)]
    pub ray_pack: Option<&'a (dyn Fn(serde_json::Value) -> anyhow::Result<String> + Sync)>,
}

/// Parses `args` (program name first) and runs the command; returns the exit
/// status. Errors are printed as one `error:` line on stderr; a closed
/// stdout (broken pipe) ends the run quietly.
pub fn run<I, T>(args: I, control: &Control) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(args, control, &Hooks::default())
}

/// [`run`] with the host's [`Hooks`].
pub fn run_with<I, T>(args: I, control: &Control, hooks: &Hooks<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match commands::execute(cli, control, hooks) {
        Ok(()) => 0,
        Err(err) => {
            if is_broken_pipe(&err) {
                return 0;
            }
            if control.is_cancelled() {
                let _ = writeln!(std::io::stderr(), "stokehold: cancelled");
                return EXIT_CANCELLED;
            }
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            1
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
