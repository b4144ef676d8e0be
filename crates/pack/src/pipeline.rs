//! The pack pipeline: parallel decode/resize, ordered write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use stokehold_core::{default_threads, Control, Finding, FindingKind, Manifest, Sample};
use stokehold_image::{
    encode, prepare, Codec, DecodeOptions, Filter, Pixels, Prepare, ResizePolicy,
};
use stokehold_store::{Attrs, PackedSample, Storage, StoreWriter, WriterConfig};

use crate::Error;

/// How pixels are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageOption {
    /// `uint8 (N, H, W, C)`, uncompressed: the fast path.
    #[default]
    Raw,
    /// One JPEG per sample, at this quality.
    Jpeg(u8),
    /// One PNG per sample.
    Png,
}

/// Options of [`pack`].
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Output `(height, width)`.
    pub size: (u32, u32),
    /// 3 (RGB) or 1 (gray).
    pub channels: u8,
    /// How images are fitted to `size`.
    pub resize: ResizePolicy,
    /// Resampling filter.
    pub filter: Filter,
    /// Letterbox padding value.
    pub fill: u8,
    /// Colour transparent pixels are composited over.
    pub background: [u8; 3],
    /// Raw or encoded storage.
    pub storage: StorageOption,
    /// Decode/resize threads; `None` uses [`default_threads`].
    pub workers: Option<usize>,
    /// Fail on the first sample that cannot be packed.
    pub strict: bool,
    /// Replace an existing destination.
    pub force: bool,
    /// Refuse images with more pixels (decompression-bomb guard).
    pub max_pixels: u64,
}

impl PackOptions {
    /// The decode + resize these options ask for; the just-in-time loader
    /// uses the same to produce the same pixels.
    pub fn prepare(&self) -> Prepare {
        Prepare {
            decode: DecodeOptions {
                channels: self.channels,
                background: self.background,
                max_pixels: self.max_pixels,
            },
            size: self.size,
            resize: self.resize,
            filter: self.filter,
            fill: self.fill,
        }
    }
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            size: (224, 224),
            channels: 3,
            resize: ResizePolicy::Stretch,
            filter: Filter::Bilinear,
            fill: 0,
            background: [255, 255, 255],
            storage: StorageOption::Raw,
            workers: None,
            strict: false,
            force: false,
            max_pixels: stokehold_index::DEFAULT_MAX_PIXELS,
        }
    }
}

/// What a pack did.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The file written.
    pub path: PathBuf,
    /// Samples written.
    pub num_samples: usize,
    /// Samples of the manifest left out.
    pub num_skipped: usize,
    /// Every finding (skipped samples, boxes dropped by the resize).
    pub findings: Vec<Finding>,
    /// Per-channel mean of the stored pixels (0–255).
    pub mean: Vec<f64>,
    /// Per-channel standard deviation of the stored pixels (0–255).
    pub std: Vec<f64>,
    /// Samples per class.
    pub class_counts: Vec<u64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Size of the file written, in bytes.
    pub file_bytes: u64,
    /// Decode/resize threads used.
    pub workers: usize,
}

/// One processed sample, ready to write.
struct Packed {
    data: Vec<u8>,
    boxes: Vec<[f32; 4]>,
    box_labels: Vec<u32>,
    orig_size: [u32; 2],
    /// Per channel: sum and sum of squares of the stored pixels.
    sums: Vec<(u64, u64)>,
    findings: Vec<Finding>,
}

fn process(sample: &Sample, options: &PackOptions) -> Result<Packed, Finding> {
    let path = &sample.path;
    let skip = |kind, msg: String| Finding::skip(kind, path, msg);
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            skip(FindingKind::MissingFile, "file does not exist".into())
        }
        _ => skip(FindingKind::Unreadable, format!("cannot read: {e}")),
    })?;
    let prepared = prepare(&bytes, &options.prepare()).map_err(|e| match e {
        stokehold_image::Error::TooLarge { .. } => skip(FindingKind::TooLarge, e.to_string()),
        _ => skip(FindingKind::NotAnImage, e.to_string()),
    })?;
    let geometry = prepared.geometry;
    let (h, w) = options.size;
    let out = prepared.pixels.data;
    let mut findings = Vec::new();
    let mut boxes = Vec::with_capacity(sample.boxes.len());
    let mut box_labels = Vec::with_capacity(sample.boxes.len());
    for (i, b) in sample.boxes.iter().enumerate() {
        match geometry.map_box(b.bbox) {
            Some(mapped) => {
                boxes.push(mapped);
                box_labels.push(b.label);
            }
            None => findings.push(
                Finding::repair(
                    FindingKind::BoxDegenerate,
                    path,
                    format!(
                        "box {i} {:?} has no area left after the {} resize; dropped",
                        b.bbox, options.resize
                    ),
                )
                .at(format!("box {i}")),
            ),
        }
    }
    let c = options.channels as usize;
    let mut sums = vec![(0u64, 0u64); c];
    for px in out.chunks_exact(c) {
        for (s, &v) in sums.iter_mut().zip(px) {
            s.0 += u64::from(v);
            s.1 += u64::from(v) * u64::from(v);
        }
    }
    let data = match options.storage {
        StorageOption::Raw => out,
        StorageOption::Jpeg(q) => encode(
            &Pixels {
                width: w,
                height: h,
                channels: options.channels,
                data: out,
            },
            Codec::Jpeg(q),
        )
        .map_err(|e| skip(FindingKind::NotAnImage, e.to_string()))?,
        StorageOption::Png => encode(
            &Pixels {
                width: w,
                height: h,
                channels: options.channels,
                data: out,
            },
            Codec::Png,
        )
        .map_err(|e| skip(FindingKind::NotAnImage, e.to_string()))?,
    };
    Ok(Packed {
        data,
        boxes,
        box_labels,
        orig_size: [prepared.source_size.1, prepared.source_size.0],
        sums,
        findings,
    })
}

fn validate(options: &PackOptions) -> Result<(), Error> {
    let (h, w) = options.size;
    if h == 0 || w == 0 || h > 16384 || w > 16384 {
        return Err(Error::InvalidArgument(format!(
            "size {h}x{w} must be between 1 and 16384 on each side"
        )));
    }
    if options.channels != 1 && options.channels != 3 {
        return Err(Error::InvalidArgument(format!(
            "channels must be 1 or 3, got {}",
            options.channels
        )));
    }
    if let StorageOption::Jpeg(q) = options.storage {
        if !(1..=100).contains(&q) {
            return Err(Error::InvalidArgument(format!(
                "quality must be 1 to 100, got {q}"
            )));
        }
    }
    if options.workers == Some(0) {
        return Err(Error::InvalidArgument("workers must be at least 1".into()));
    }
    Ok(())
}

/// Packs `manifest` into `dest`. See the crate documentation.
///
/// Decode and resize run on `options.workers` threads with at most four
/// samples per thread in flight; samples are written in manifest order. A
/// sample that fails is skipped and reported (or, with `strict`, fails the
/// run). Nothing appears at `dest` unless the whole pack succeeds.
pub fn pack(
    manifest: &Manifest,
    dest: &Path,
    options: &PackOptions,
    control: &Control,
) -> Result<PackReport, Error> {
    validate(options)?;
    if dest.exists() && !options.force {
        return Err(Error::Exists {
            path: dest.to_path_buf(),
        });
    }
    let start = Instant::now();
    let (h, w) = options.size;
    let storage = match options.storage {
        StorageOption::Raw => Storage::Raw,
        StorageOption::Jpeg(_) => Storage::Encoded {
            codec: "jpeg".into(),
        },
        StorageOption::Png => Storage::Encoded {
            codec: "png".into(),
        },
    };
    let n = manifest.samples.len();
    let config = WriterConfig {
        image_shape: [h as usize, w as usize, options.channels as usize],
        storage,
        capacity: n,
    };
    let mut writer = StoreWriter::create(dest, config)?;

    let workers = options.workers.unwrap_or_else(default_threads).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("stokehold-pk-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {workers} threads: {e}")))?;
    // Four samples per worker keep every core busy while the writer catches
    // up, and bound memory to a few decoded images per thread.
    let window = workers * 4;
    let c = options.channels as usize;
    let mut sums = vec![(0u128, 0u128); c];
    let mut findings = Vec::new();
    let mut written_indices = 0usize;
    let mut class_counts = vec![0u64; manifest.classes.len()];
    control.start(n as u64);

    let (tx, rx) = mpsc::channel::<(usize, std::thread::Result<Result<Packed, Finding>>)>();
    let mut ready: BTreeMap<usize, Result<Packed, Finding>> = BTreeMap::new();
    let (mut next_spawn, mut next_write) = (0usize, 0usize);
    let outcome: Result<(), Error> = pool.in_place_scope(|scope| loop {
        while next_spawn < n && next_spawn - next_write < window && !control.is_cancelled() {
            let i = next_spawn;
            let tx = tx.clone();
            let sample = &manifest.samples[i];
            scope.spawn(move |_| {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process(sample, options)
                }));
                let _ = tx.send((i, result));
            });
            next_spawn += 1;
        }
        if next_write == n {
            return Ok(());
        }
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let (i, result) = rx.recv().expect("a worker holds a sender until it reports");
        let result = result.unwrap_or_else(|panic| {
            let what = stokehold_core::panic_message(&*panic);
            Err(Finding::skip(
                FindingKind::NotAnImage,
                &manifest.samples[i].path,
                format!("internal error: {what}"),
            ))
        });
        ready.insert(i, result);
        while let Some(result) = ready.remove(&next_write) {
            let sample = &manifest.samples[next_write];
            match result {
                Err(finding) => {
                    if options.strict {
                        return Err(Error::Strict { finding });
                    }
                    findings.push(finding);
                }
                Ok(packed) => {
                    writer.push(&PackedSample {
                        data: &packed.data,
                        label: sample.label,
                        boxes: &packed.boxes,
                        box_labels: &packed.box_labels,
                        path: &sample.path.to_string_lossy(),
                        orig_size: packed.orig_size,
                        source_index: next_write,
                    })?;
                    for (total, (s, s2)) in sums.iter_mut().zip(&packed.sums) {
                        total.0 += u128::from(*s);
                        total.1 += u128::from(*s2);
                    }
                    if options.strict {
                        if let Some(f) = packed.findings.into_iter().next() {
                            return Err(Error::Strict { finding: f });
                        }
                    } else {
                        findings.extend(packed.findings);
                    }
                    if let Some(count) = sample.label.and_then(|l| class_counts.get_mut(l as usize))
                    {
                        *count += 1;
                    }
                    written_indices += 1;
                }
            }
            next_write += 1;
            control.advance(1);
        }
    });
    drop(tx);
    outcome?;
    if written_indices == 0 {
        return Err(Error::Empty { findings });
    }

    let pixels = (written_indices as u128) * u128::from(h) * u128::from(w);
    let mean: Vec<f64> = sums
        .iter()
        .map(|(s, _)| *s as f64 / pixels as f64)
        .collect();
    let std: Vec<f64> = sums
        .iter()
        .zip(&mean)
        .map(|((_, s2), m)| (*s2 as f64 / pixels as f64 - m * m).max(0.0).sqrt())
        .collect();
    let attrs = Attrs {
        classes: manifest.classes.clone(),
        mean: mean.clone(),
        std: std.clone(),
        resize: options.resize.as_str().into(),
        filter: options.filter.as_str().into(),
        fill: options.fill,
        quality: match options.storage {
            StorageOption::Jpeg(q) => Some(q),
            _ => None,
        },
        source: manifest
            .source
            .as_ref()
            .map(|s| s.path.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let finished = writer.finish(&attrs)?;
    let persisted = if options.force {
        finished.persist(dest)
    } else {
        finished.persist_noclobber(dest)
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists {
                path: dest.to_path_buf(),
            }
        } else {
            Error::Store(stokehold_store::Error::Io {
                path: dest.to_path_buf(),
                source: e.error,
            })
        }
    })?;
    let file_bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(PackReport {
        path: dest.to_path_buf(),
        num_samples: written_indices,
        num_skipped: n - written_indices,
        findings,
        mean,
        std,
        class_counts,
        seconds: start.elapsed().as_secs_f64(),
        file_bytes,
        workers,
    })
}
