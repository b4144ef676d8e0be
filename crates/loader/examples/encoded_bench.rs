//! Benchmark of packed JPEG (or PNG) storage: the loader's uint8 batches on
//! 1 and 2 threads against decoding the same encoded bytes from memory on
//! one thread, in the same run.
//!
//! ```text
//! cargo run --release -p stokehold-loader --example encoded_bench -- PACKED [ROUNDS]
//! ```
//!
//! PACKED is a packed file or dataset directory with encoded storage.
//! Prints one `key value` line per figure (medians of ROUNDS, default 3).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use stokehold_image::{decode, DecodeOptions};
use stokehold_loader::{
    Dataset, DatasetOptions, Dtype, Loader, LoaderOptions, PackedSource, Source,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn loader_rate(path: &Path, threads: usize) -> f64 {
    let source = PackedSource::open(path).expect("a packed dataset");
    let n = source.len();
    let options = DatasetOptions {
        batch_size: 64,
        dtype: Dtype::U8,
        seed: 1,
        ..Default::default()
    };
    let ds = Dataset::new(source, options).expect("dataset");
    let mut loader = Loader::new(
        Arc::new(ds),
        LoaderOptions {
            threads,
            prefetch: 2 * threads,
            ..Default::default()
        },
    )
    .expect("loader");
    let t = Instant::now();
    let mut seen = 0;
    for batch in loader.epoch() {
        seen += batch.expect("a batch").shape[0];
    }
    assert_eq!(seen, n);
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = Path::new(args.get(1).expect("PACKED"));
    let rounds: usize = args.get(2).map_or(3, |v| v.parse().expect("ROUNDS"));
    let source = PackedSource::open(path).expect("a packed dataset");
    let reader = source.reader();
    let n = reader.len();
    let c = reader.info().image_shape[2] as u8;
    // The same bytes, in memory, read once.
    let encoded: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut b = Vec::new();
            reader.read_bytes(i, &mut b).expect("a sample");
            b
        })
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    println!("samples {n}");
    println!("encoded_bytes_per_sample {}", bytes / n.max(1));
    let options = DecodeOptions {
        channels: c,
        ..DecodeOptions::default()
    };
    let (mut memory, mut one, mut two) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Alternate the three so that the machine's drift affects each alike.
        let t = Instant::now();
        for e in &encoded {
            std::hint::black_box(decode(e, &options).expect("decodes"));
        }
        memory.push(n as f64 / t.elapsed().as_secs_f64());
        one.push(loader_rate(path, 1));
        two.push(loader_rate(path, 2));
    }
    let (memory, one, two) = (median(memory), median(one), median(two));
    println!("decode_from_memory_1_thread_images_per_s {memory:.0}");
    println!("loader_1_thread_images_per_s {one:.0}");
    println!("loader_2_threads_images_per_s {two:.0}");
    println!("loader_1_vs_memory {:.3}", one / memory);
    println!("scaling_1_to_2 {:.3}", two / one);
}
