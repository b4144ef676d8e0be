//! What the fuzz targets share: one scratch folder per process, holding the
//! input under a fixed name and two real images that annotation inputs can
//! point at (`a.jpg`, `a.png`, also in `voc/JPEGImages/`), so that indexing
//! goes on past "missing file" into probing and box checks.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use stokehold_core::{Control, SourceFormat};
use stokehold_index::IndexOptions;

/// A 16×16 baseline JPEG (`crates/index/examples/tiny.jpg`).
const JPEG: &[u8] = include_bytes!("../seeds/decode/tiny.jpg");

/// A PNG signature and IHDR for 3×2 RGB: all that probing reads.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x03\0\0\0\x02\x08\x02\0\0\0\0\0\0\0";

/// The scratch folder, created once per process. libFuzzer leaves through
/// `exit`, so it is never removed: `make fuzz` points `TMPDIR` into
/// `fuzz/target/` to keep the leftovers there.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("stokehold-fuzz-")
            .tempdir()
            .expect("create the scratch folder");
        let voc = dir.path().join("voc");
        std::fs::create_dir_all(voc.join("Annotations")).expect("create voc/Annotations");
        std::fs::create_dir_all(voc.join("JPEGImages")).expect("create voc/JPEGImages");
        for folder in [dir.path(), &voc.join("JPEGImages")] {
            std::fs::write(folder.join("a.jpg"), JPEG).expect("write a.jpg");
            std::fs::write(folder.join("a.png"), PNG).expect("write a.png");
        }
        dir
    })
    .path()
}

/// Writes `data` to `name` in the scratch folder and returns its path.
pub fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("write the fuzz input");
    path
}

/// Indexes `source` as `format` on one thread. Any `Ok` or `Err` is fine;
/// only a panic, an abort or a hang is a bug.
///
/// `index` runs on a rayon pool of its own, and dropping a pool does not
/// join its threads: they finish exiting after the call returns. Waiting
/// for them keeps LeakSanitizer from reporting the memory of a thread that
/// is still on its way out (it did, in every index target, within a
/// minute), and a thread that stays is a finding.
pub fn index(source: &Path, format: SourceFormat) {
    let before = threads();
    let options = IndexOptions {
        format: Some(format),
        threads: Some(1),
        ..Default::default()
    };
    let _ = stokehold_index::index(source, &options, &Control::new());
    let start = Instant::now();
    while threads() > before {
        let left = threads().saturating_sub(before);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "index left {left} thread(s) running 5 s after it returned"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Threads of this process, as Linux lists them.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}
