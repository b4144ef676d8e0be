//! The pack pipeline: parallel decode/resize, ordered write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use stokehold_core::{Control, Finding, FindingKind, Limits, Manifest, Sample};
use stokehold_image::{
    encode, prepare, Codec, DecodeOptions, Filter, Pixels, Prepare, ResizePolicy,
};
use stokehold_store::{check_class_names, Attrs, PackedSample, Storage, StoreWriter, WriterConfig};

use crate::Error;

/// How pixels are stored in the file: the words `"raw"`, `"jpeg"`, `"png"`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum StorageKind {
    /// `uint8 (N, H, W, C)`, uncompressed: the fast path.
    #[default]
    Raw,
    /// One JPEG per sample.
    Jpeg,
    /// One PNG per sample.
    Png,
}

impl StorageKind {
    /// The storage with this kind (`quality` is used for JPEG).
    pub fn with_quality(self, quality: u8) -> StorageOption {
        match self {
            StorageKind::Raw => StorageOption::Raw,
            StorageKind::Jpeg => StorageOption::Jpeg(quality),
            StorageKind::Png => StorageOption::Png,
        }
    }
}

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
    /// Decode/resize threads; `None` uses `STOKEHOLD_NUM_THREADS` or the
    /// core count ([`stokehold_core::resolve_threads`]).
    pub threads: Option<usize>,
    /// Fail on the first sample that cannot be packed.
    pub strict: bool,
    /// Replace an existing destination.
    pub force: bool,
    /// Bounds on pixels and bytes read per image.
    pub limits: Limits,
}

impl PackOptions {
    /// The decode + resize these options ask for; the just-in-time loader
    /// uses the same to produce the same pixels.
    pub fn prepare(&self) -> Prepare {
        Prepare {
            decode: DecodeOptions {
                channels: self.channels,
                background: self.background,
                max_pixels: self.limits.max_pixels,
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
            threads: None,
            strict: false,
            force: false,
            limits: Limits::default(),
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
    pub threads: usize,
}

/// One processed sample, ready to write.
struct Packed {
    data: Vec<u8>,
    boxes: Vec<[f32; 4]>,
    box_labels: Vec<u32>,
    orig_size: [u32; 2],
    /// The stored pixels, when the data is encoded (for the statistics).
    pixels: Option<Vec<u8>>,
    findings: Vec<Finding>,
}

fn process(sample: &Sample, options: &PackOptions) -> Result<Packed, Finding> {
    let path = &sample.path;
    let skip = |kind, msg: String| Finding::skip(kind, path, msg);
    let limits = &options.limits;
    let bytes = stokehold_core::fsutil::read_capped(path, limits.max_file_bytes, "max_file_bytes")
        .map_err(|e| match e {
            e if e.is_not_found() => skip(FindingKind::MissingFile, "file does not exist".into()),
            e @ stokehold_core::fsutil::ReadError::TooLarge { .. } => {
                skip(FindingKind::TooLarge, e.to_string())
            }
            e => skip(FindingKind::Unreadable, format!("cannot read: {e}")),
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
    let (data, pixels) = match options.storage {
        StorageOption::Raw => (out, None),
        StorageOption::Jpeg(_) | StorageOption::Png => {
            let codec = match options.storage {
                StorageOption::Jpeg(q) => Codec::Jpeg(q),
                _ => Codec::Png,
            };
            let px = Pixels {
                width: w,
                height: h,
                channels: options.channels,
                data: out,
            };
            let encoded =
                encode(&px, codec).map_err(|e| skip(FindingKind::NotAnImage, e.to_string()))?;
            (encoded, Some(px.data))
        }
    };
    Ok(Packed {
        data,
        boxes,
        box_labels,
        orig_size: [prepared.source_size.1, prepared.source_size.0],
        pixels,
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
    options.limits.check().map_err(Error::InvalidArgument)?;
    Ok(())
}

/// Everything that could fail at the end of a pack, checked before any
/// image is decoded: the class names, the destination (not a directory,
/// not the source or one of its images, not being written by another
/// pack, not existing unless `force`).
fn preflight(manifest: &Manifest, dest: &Path, options: &PackOptions) -> Result<(), Error> {
    check_class_names(&manifest.classes).map_err(Error::InvalidArgument)?;
    check_output(dest, options.force)?;
    let dest_abs = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
    let dest_real = std::fs::canonicalize(dest).ok();
    let same = |p: &Path| {
        p == dest_abs
            || dest_real.as_deref() == Some(p)
            || std::fs::canonicalize(p).ok().as_deref() == Some(dest_abs.as_path())
    };
    if let Some(source) = &manifest.source {
        if same(&source.path) {
            return Err(Error::InvalidArgument(format!(
                "the output {} is the source being packed; write elsewhere",
                dest.display()
            )));
        }
    }
    if let Some(s) = manifest
        .samples
        .iter()
        .find(|s| s.path == dest_abs || dest_real.as_deref() == Some(s.path.as_path()))
    {
        return Err(Error::InvalidArgument(format!(
            "the output {} is one of the images being packed ({}); write elsewhere",
            dest.display(),
            s.path.display()
        )));
    }
    Ok(())
}

/// Checks the destination before anything is read: not a directory, and
/// not an existing file unless `force`. Callers that index first (the
/// command line, Python) call it before indexing too.
pub fn check_output(dest: &Path, force: bool) -> Result<(), Error> {
    if dest.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "the output {} is a directory; give a file name such as {}",
            dest.display(),
            dest.join("data.h5").display()
        )));
    }
    if dest.exists() && !force {
        return Err(Error::Exists {
            path: dest.to_path_buf(),
        });
    }
    match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(Error::Store(stokehold_store::Error::Io {
                path: dir.to_path_buf(),
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            }))
        }
        _ => Ok(()),
    }
}

/// An advisory lock on the destination for as long as a pack runs, so that
/// a second pack to the same file fails at once instead of at its end. The
/// lock file (hidden, beside the destination) is removed when the pack
/// ends; a pack that is killed leaves it, and it locks nothing then.
struct DestLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl DestLock {
    fn take(dest: &Path) -> Result<DestLock, Error> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dest.with_file_name(format!(".{name}.stokehold-lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                Error::Store(stokehold_store::Error::Io {
                    path: path.clone(),
                    error: e,
                })
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DestLock { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InvalidArgument(format!(
                "{} is being written by another pack right now",
                dest.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Store(stokehold_store::Error::Io {
                path: path.clone(),
                error: e,
            })),
        }
    }
}

impl Drop for DestLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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
    preflight(manifest, dest, options)?;
    let threads = stokehold_core::resolve_threads(options.threads, "threads")
        .map_err(Error::InvalidArgument)?;
    let _lock = DestLock::take(dest)?;
    let start = Instant::now();
    let (h, w) = options.size;
    let storage = match options.storage {
        StorageOption::Raw => Storage::Raw,
        StorageOption::Jpeg(_) => Storage::Encoded {
            codec: StorageKind::Jpeg.to_string(),
        },
        StorageOption::Png => Storage::Encoded {
            codec: StorageKind::Png.to_string(),
        },
    };
    let n = manifest.samples.len();
    let config = WriterConfig {
        image_shape: [h as usize, w as usize, options.channels as usize],
        storage,
        capacity: n,
    };
    let mut writer = StoreWriter::create(dest, config)?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("stokehold-pk-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    // Four samples per thread keep every core busy while the writer catches
    // up, and bound memory to a few decoded images per thread.
    let window = threads * 4;
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
                        shape: [h, w, u32::from(options.channels)],
                        label: sample.label,
                        boxes: &packed.boxes,
                        box_labels: &packed.box_labels,
                        path: &sample.path,
                        orig_size: packed.orig_size,
                        source_index: next_write,
                    })?;
                    writer.add_pixels(packed.pixels.as_deref().unwrap_or(&packed.data));
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

    let attrs = Attrs {
        classes: manifest.classes.clone(),
        mean: Vec::new(),
        std: Vec::new(),
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
    let (finished, sums) = writer.finish(&attrs)?;
    let (mean, std) = sums.mean_std();
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
                error: e.error,
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
        threads,
    })
}
