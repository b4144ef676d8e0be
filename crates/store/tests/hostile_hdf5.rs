//! Packed files whose HDF5 metadata trips libhdf5 itself (found by the
//! `packed` fuzz target, fuzz/findings): each is an error naming the file,
//! never a hang or an abort. One test a process (nextest), since the first
//! leaves libhdf5 looping on a thread.

use std::path::Path;
use std::time::{Duration, Instant};

use stokehold_store::StoreReader;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Regression: a global heap collection whose free-space object has size 0
/// made `StoreReader::open` (and so `Dataset`, `inspect`, `preview`) hang
/// forever inside libhdf5 (H5HG__cache_heap_deserialize never advances).
#[test]
fn a_global_heap_that_loops_libhdf5_is_an_error_after_the_timeout() {
    std::env::set_var("STOKEHOLD_HDF5_OPEN_TIMEOUT", "2");
    let start = Instant::now();
    let err = StoreReader::open(&data("global-heap-loop.h5")).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "returned, in {:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("global-heap-loop.h5") && msg.contains("damaged"),
        "{msg}"
    );
}

/// A continuation message claiming 2^61 bytes: libhdf5's allocation fails
/// and the open is refused (under AddressSanitizer the same input aborts).
#[test]
fn a_huge_continuation_length_is_refused() {
    let err = StoreReader::open(&data("huge-continuation.h5")).unwrap_err();
    assert!(err.to_string().contains("huge-continuation.h5"), "{err}");
}
