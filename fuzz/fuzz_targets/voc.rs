//! A Pascal VOC folder whose one annotation, `Annotations/a.xml`, is the
//! input, through `index`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_core::SourceFormat;

fuzz_target!(|data: &[u8]| {
    stokehold_fuzz::write("voc/Annotations/a.xml", data);
    stokehold_fuzz::index(&stokehold_fuzz::scratch().join("voc"), SourceFormat::Voc);
});
