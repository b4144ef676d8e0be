//! A packed file through `StoreReader::open`; when it opens, a few samples
//! are read (first, middle, last) with each accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stokehold_store::StoreReader;

fuzz_target!(|data: &[u8]| {
    let path = stokehold_fuzz::write("x.h5", data);
    let Ok(reader) = StoreReader::open(&path) else {
        return;
    };
    let n = reader.len();
    let mut bytes = Vec::new();
    let mut picks = vec![0, n / 2, n.saturating_sub(1)];
    picks.dedup();
    for i in picks.into_iter().filter(|&i| i < n) {
        let _ = reader.read_bytes(i, &mut bytes);
        // A raw sample lies within the file, so a shape that claims more
        // bytes than the input would fail anyway: skip it rather than
        // allocate what the harness, not the reader, asked for.
        let shape = reader.sample_shape(i);
        let len = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if let Some(len) = len.filter(|&len| len <= data.len()) {
            let mut raw = vec![0; len];
            let _ = reader.read_raw(i, &mut raw);
        }
        let _ = reader.boxes(i);
        let _ = reader.label(i);
        let _ = reader.sample_range(i);
        let _ = reader.source_path(i);
    }
    // Past the end is an error, never a panic.
    assert!(reader.read_bytes(n, &mut bytes).is_err());
});
