//! The `stokehold` binary.

fn main() {
    let control = stokehold_core::Control::new();
    std::process::exit(stokehold_cli::run(std::env::args_os(), &control));
}
