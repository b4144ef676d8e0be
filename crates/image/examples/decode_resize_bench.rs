//! Benchmark: single-thread decode + resize of every image in a folder.
//!
//! ```text
//! cargo run --release -p stokehold-image --example decode_resize_bench -- DIR [SIZE] [OUT.raw]
//! ```
//!
//! Reads every file under DIR into memory first (so disk is not timed),
//! then decodes and resizes each to SIZE×SIZE RGB (bilinear, stretch) three
//! times on one thread, and prints the median milliseconds per image: first
//! stokehold's own path (`prepare_into`: a JPEG decoded at the smallest DCT
//! scale that covers the output, then the antialiased resize), then a
//! full-size decode + resize for reference, split into decode and resize.
//! With OUT.raw, writes the pixels of stokehold's path of the last pass
//! (files in sorted order) for a quality comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use stokehold_image::{
    decode, prepare_into, DecodeOptions, Filter, Geometry, Prepare, ResizePolicy, Resizer,
};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: decode_resize_bench DIR [SIZE] [OUT.raw]"),
    );
    let size: u32 = args
        .next()
        .map_or(224, |s| s.parse().expect("SIZE is a number"));
    let dump = args.next().map(PathBuf::from);
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    let blobs: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let options = DecodeOptions::default();
    let mut resizer = Resizer::new(Filter::Bilinear);
    let mut out = vec![0u8; (size * size * 3) as usize];
    let prepare = Prepare {
        decode: options,
        size: (size, size),
        resize: ResizePolicy::Stretch,
        filter: Filter::Bilinear,
        fill: 0,
        ..Prepare::default()
    };
    let (mut ours, mut runs, mut decode_only) = (Vec::new(), Vec::new(), Vec::new());
    let mut pixels_out = Vec::new();
    for pass in 0..3 {
        let t = Instant::now();
        for blob in &blobs {
            prepare_into(blob, &prepare, &mut out).expect("prepare");
            if pass == 2 && dump.is_some() {
                pixels_out.extend_from_slice(&out);
            }
        }
        ours.push(1e3 * t.elapsed().as_secs_f64() / blobs.len() as f64);
        // The decode of stokehold's path alone, at the scale it chose: at
        // 1/8, what is left is mostly entropy (Huffman) decoding, the floor.
        let t = Instant::now();
        for blob in &blobs {
            let eighths = match stokehold_image::jpeg_info(blob) {
                Some(info) if info.scalable => {
                    let (w, h) = info.displayed();
                    let g = Geometry::new(ResizePolicy::Stretch, w, h, size, size);
                    stokehold_image::jpeg_eighths(&g)
                }
                _ => 8,
            };
            std::hint::black_box(
                stokehold_image::decode_scaled(blob, &options, eighths).expect("decode"),
            );
        }
        decode_only.push(1e3 * t.elapsed().as_secs_f64() / blobs.len() as f64);
        let (mut t_decode, mut t_resize) = (0.0, 0.0);
        for blob in &blobs {
            let t = Instant::now();
            let px = decode(blob, &options).expect("decode");
            let t1 = Instant::now();
            let g = Geometry::new(ResizePolicy::Stretch, px.width, px.height, size, size);
            resizer.resize(&px, &g, 0, &mut out).expect("resize");
            t_resize += t1.elapsed().as_secs_f64();
            t_decode += (t1 - t).as_secs_f64();
        }
        let n = blobs.len() as f64;
        runs.push((
            1e3 * (t_decode + t_resize) / n,
            1e3 * t_decode / n,
            1e3 * t_resize / n,
        ));
    }
    ours.sort_by(f64::total_cmp);
    decode_only.sort_by(f64::total_cmp);
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (total, dec, res) = runs[1];
    println!(
        "stokehold decode+resize, 1 thread: {:.3} ms/image (scaled decode {:.3} + resize) over {} images",
        ours[1],
        decode_only[1],
        blobs.len()
    );
    println!(
        "full-size decode+resize, 1 thread: {total:.3} ms/image (decode {dec:.3}, resize {res:.3})"
    );
    if let Some(path) = dump {
        std::fs::write(path, pixels_out).expect("write dump");
    }
}
