//! An image file through `probe`, which reads its header only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_core::Limits;

fuzz_target!(|data: &[u8]| {
    let path = stokehold_fuzz::write("x.img", data);
    let _ = stokehold_index::probe(&path, &Limits::default());
});
