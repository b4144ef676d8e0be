//! Benchmark: indexing a class-per-folder tree of many small image files.
//!
//! Generates `N` (default 100,000) 16×16 JPEG files in 100 class folders
//! under a temporary directory, indexes once to warm the page cache, then
//! times three runs and reports the median files/s. The manifest's memory is
//! measured with a counting allocator: bytes still allocated after `index`
//! returns, per sample, with the path bytes counted apart.
//!
//! ```text
//! cargo run --release -p stokehold-index --example index_bench [N]
//! ```

// A global allocator needs `unsafe impl`; it only forwards to the system
// allocator and counts bytes.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use stokehold_core::Control;
use stokehold_index::{index, IndexOptions};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TINY_JPEG: &[u8] = include_bytes!("tiny.jpg");

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("N must be a number"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("tree");
    let t = Instant::now();
    for i in 0..n {
        let class = root.join(format!("class_{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&class).expect("mkdir");
        }
        std::fs::write(class.join(format!("img_{i:07}.jpg")), TINY_JPEG).expect("write");
    }
    println!(
        "generated {n} files of {} bytes in {:.1}s",
        TINY_JPEG.len(),
        t.elapsed().as_secs_f64()
    );

    let options = IndexOptions::default();
    let threads = stokehold_core::default_threads();
    let warm = index(&root, &options, &Control::new()).expect("index");
    assert_eq!(warm.samples.len(), n);
    drop(warm);

    let mut rates = Vec::new();
    let mut per_sample = 0.0;
    let mut path_bytes = 0.0;
    for _ in 0..3 {
        let before = LIVE.load(Ordering::Relaxed);
        let t = Instant::now();
        let manifest = index(&root, &options, &Control::new()).expect("index");
        let secs = t.elapsed().as_secs_f64();
        let retained = (LIVE.load(Ordering::Relaxed) - before) as f64;
        let paths: usize = manifest.samples.iter().map(|s| s.path.capacity()).sum();
        assert_eq!(manifest.samples.len(), n);
        rates.push(n as f64 / secs);
        per_sample = (retained - paths as f64) / n as f64;
        path_bytes = paths as f64 / n as f64;
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "index folder tree: {n} files, {threads} threads: median {:.0} files/s (runs: {})",
        rates[1],
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("manifest memory: {per_sample:.0} bytes per sample plus the path ({path_bytes:.0} bytes per path here)");
}
