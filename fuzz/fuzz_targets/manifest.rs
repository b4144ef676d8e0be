//! A JSON-lines manifest through `Manifest::load`, then through `index`
//! (which also probes the images it lists).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_core::{Manifest, SourceFormat};

fuzz_target!(|data: &[u8]| {
    let path = stokehold_fuzz::write("x.jsonl", data);
    let _ = Manifest::load(&path);
    stokehold_fuzz::index(&path, SourceFormat::Manifest);
});
