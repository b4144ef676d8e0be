//! A CSV source (`path,label[,x_min,y_min,x_max,y_max]`) through `index`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_core::SourceFormat;

fuzz_target!(|data: &[u8]| {
    let path = stokehold_fuzz::write("x.csv", data);
    stokehold_fuzz::index(&path, SourceFormat::Csv);
});
