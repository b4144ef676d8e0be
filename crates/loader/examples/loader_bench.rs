//! Benchmark of the loader, with the machine's memory-copy bandwidth
//! measured in the same run.
//!
//! ```text
//! cargo run --release -p stokehold-loader --example loader_bench -- PACKED.h5 MANIFEST.jsonl [WORKERS]
//! ```
//!
//! PACKED.h5 is a raw 224×224×3 pack; MANIFEST.jsonl the same images as a
//! manifest. Prints one `key value` line per figure.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use stokehold_core::Manifest;
use stokehold_image::{prepare, DecodeOptions, Filter, Prepare, ResizePolicy};
use stokehold_loader::{
    Dataset, DatasetOptions, Dtype, JitSource, Loader, LoaderOptions, PackedSource, Source,
};

const BATCH: usize = 64;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// GB/s of copying `bytes` with `threads` threads (each a share), median of 5.
fn memcpy_gbps(bytes: usize, threads: usize) -> f64 {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let mut rates = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        std::thread::scope(|s| {
            let chunk = bytes.div_ceil(threads);
            for (d, sr) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                s.spawn(move || d.copy_from_slice(sr));
            }
        });
        rates.push(bytes as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    std::hint::black_box(&dst);
    rates[3]
}

/// Images/s over `epochs` epochs after one warm-up epoch.
fn run<S: Source + 'static>(ds: Dataset<S>, workers: usize, epochs: usize) -> (f64, usize) {
    let n = ds.samples_per_epoch();
    let options = LoaderOptions {
        threads: workers,
        prefetch: 2 * workers,
        ..Default::default()
    };
    let mut loader = Loader::new(Arc::new(ds), options).expect("loader");
    let mut bytes = 0;
    for b in loader.epoch() {
        let b = b.expect("batch");
        bytes = b.shape.iter().product::<usize>();
    }
    let t = Instant::now();
    for _ in 0..epochs {
        for b in loader.epoch() {
            std::hint::black_box(b.expect("batch"));
        }
    }
    ((n * epochs) as f64 / t.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let packed = args
        .next()
        .expect("usage: loader_bench PACKED.h5 MANIFEST.jsonl [WORKERS]");
    let manifest = args
        .next()
        .expect("usage: loader_bench PACKED.h5 MANIFEST.jsonl [WORKERS]");
    let workers: usize = args
        .next()
        .map_or(2, |w| w.parse().expect("WORKERS is a number"));
    let open = || PackedSource::open(Path::new(&packed)).expect("open the packed file");
    let n = open().len();
    println!("samples {n}");
    println!("workers {workers}");

    // Output bytes of one float32 batch of 64×224×224×3.
    let f32_batch_bytes = BATCH * 224 * 224 * 3 * 4;

    let opts = DatasetOptions {
        batch_size: BATCH,
        shuffle: true,
        ..Default::default()
    };
    let rss_before = peak_rss_mb();
    let (f32_rate, _) = run(
        Dataset::new(open(), opts.clone()).expect("dataset"),
        workers,
        3,
    );
    println!("packed_f32_images_per_s {f32_rate:.0}");
    println!(
        "packed_f32_gbps {:.2}",
        f32_rate * (224 * 224 * 3 * 4) as f64 / 1e9
    );
    println!("peak_rss_mb_before {rss_before:.0}");
    println!("peak_rss_mb_after_f32 {:.0}", peak_rss_mb());
    println!(
        "prefetch_times_batch_mb {:.0}",
        (2 * workers * f32_batch_bytes) as f64 / 1e6
    );
    // The copy runs after the loader so that its buffers do not raise the
    // peak RSS reported above.
    println!("memcpy_gbps_1 {:.2}", memcpy_gbps(f32_batch_bytes, 1));
    println!(
        "memcpy_gbps_{workers} {:.2}",
        memcpy_gbps(f32_batch_bytes, workers)
    );
    let u8_opts = DatasetOptions {
        dtype: Dtype::U8,
        ..opts.clone()
    };
    let (u8_rate, _) = run(
        Dataset::new(open(), u8_opts.clone()).expect("dataset"),
        workers,
        3,
    );
    println!("packed_u8_images_per_s {u8_rate:.0}");
    let in_order = DatasetOptions {
        shuffle: false,
        ..u8_opts
    };
    let (seq_rate, _) = run(Dataset::new(open(), in_order).expect("dataset"), workers, 3);
    println!("packed_u8_sequential_images_per_s {seq_rate:.0}");

    if std::env::var_os("LOADER_BENCH_PACKED_ONLY").is_some() {
        return;
    }
    // Just in time: single-thread decode + resize rate, then the loader.
    let m = Manifest::load(Path::new(&manifest)).expect("manifest");
    let p = Prepare {
        decode: DecodeOptions::default(),
        size: (224, 224),
        resize: ResizePolicy::Stretch,
        filter: Filter::Bilinear,
        fill: 0,
        ..Prepare::default()
    };
    let t = Instant::now();
    for s in &m.samples {
        let bytes = std::fs::read(&s.path).expect("read");
        std::hint::black_box(prepare(&bytes, &p).expect("decode"));
    }
    let single = m.samples.len() as f64 / t.elapsed().as_secs_f64();
    println!("jit_single_thread_images_per_s {single:.0}");
    let stats = open().stats();
    for w in [1, workers] {
        let ds = Dataset::new(JitSource::new(m.clone(), p, stats.clone()), opts.clone())
            .expect("dataset");
        let (rate, _) = run(ds, w, 1);
        println!("jit_loader_{w}_workers_images_per_s {rate:.0}");
        println!(
            "jit_loader_{w}_workers_efficiency {:.2}",
            rate / (single * w as f64)
        );
    }
}
