//! The `stokehold` binary.

fn main() {
    // The control lives as long as the process; the Ctrl-C handler needs it 'static.
    let control: &'static stokehold_core::Control = Box::leak(Box::default());
    // First Ctrl-C: stop cleanly (temporary files removed, nothing half
    // written under the final name). Second: leave at once.
    let _ = ctrlc::set_handler(move || {
        if control.is_cancelled() {
            std::process::exit(stokehold_cli::EXIT_CANCELLED);
        }
        control.cancel();
    });
    std::process::exit(stokehold_cli::run(std::env::args_os(), control));
}
