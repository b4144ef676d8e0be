//! A COCO instances JSON through `index`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_core::SourceFormat;

fuzz_target!(|data: &[u8]| {
    let path = stokehold_fuzz::write("x.json", data);
    stokehold_fuzz::index(&path, SourceFormat::Coco);
});
