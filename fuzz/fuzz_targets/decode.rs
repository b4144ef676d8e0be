//! Image bytes through `decode`, in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_image::DecodeOptions;

fuzz_target!(|data: &[u8]| {
    // 4 megapixels: a 12 MB RGB result at most, so that every input stays
    // well under the 2 GB RSS limit of `make fuzz`.
    let options = DecodeOptions {
        max_pixels: 4_000_000,
        ..Default::default()
    };
    let _ = stokehold_image::decode(data, &options);
});
