//! The options of a pack, and its report.

use std::path::PathBuf;

use stokehold_core::{Finding, Limits};
use stokehold_image::{DecodeOptions, Filter, Prepare, ResizePolicy};

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

/// Options of [`pack`](crate::pack).
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Output `(height, width)` (not used by `fit`).
    pub size: (u32, u32),
    /// `fit`: the longer side at most this.
    pub max_size: u32,
    /// `fit`: both sides a multiple of this (1: any size).
    pub multiple: u32,
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
    /// Write a directory of shards (and its index) instead of one file.
    pub shards: Option<ShardOptions>,
    /// Pack only part `i` of `n` (a directory of shards, committed later by
    /// [`crate::commit`]): the manifest positions `[i·len/n, (i+1)·len/n)`.
    pub part: Option<(usize, usize)>,
}

/// When a shard is full. With neither bound, one shard holds a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardOptions {
    /// Samples per shard.
    pub samples: Option<usize>,
    /// Bytes of sample data per shard (raw samples: a whole number of
    /// samples that fits; encoded: a shard ends with the sample that
    /// reaches it).
    pub bytes: Option<u64>,
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
            max_size: self.max_size,
            multiple: self.multiple,
        }
    }

    /// The shape every sample is stored at: `(height, width)`, or `None`
    /// for `fit`, where each sample has its own.
    pub fn fixed_size(&self) -> Option<(u32, u32)> {
        (self.resize != ResizePolicy::Fit).then_some(self.size)
    }
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            size: (224, 224),
            max_size: 512,
            multiple: 1,
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
            shards: None,
            part: None,
        }
    }
}

impl PackOptions {
    /// Whether the output is a directory of shards.
    pub fn sharded(&self) -> bool {
        self.shards.is_some() || self.part.is_some()
    }
}

/// What a pack did.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The file written, or the dataset directory.
    pub path: PathBuf,
    /// Shard files written (1 for a single file).
    pub shards: usize,
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
    /// Bytes written (the file, or every shard).
    pub file_bytes: u64,
    /// Decode/resize threads used.
    pub threads: usize,
}

pub(crate) fn validate(options: &PackOptions) -> Result<(), Error> {
    if options.resize == ResizePolicy::Fit {
        let (m, k) = (options.max_size, options.multiple);
        if !(1..=16384).contains(&m) || k == 0 || k > m {
            return Err(Error::InvalidArgument(format!(
                "fit needs max_size between 1 and 16384 and multiple between 1 and max_size, got {m} and {k}"
            )));
        }
    }
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
    if let Some((i, n)) = options.part {
        if n == 0 || i >= n {
            return Err(Error::InvalidArgument(format!(
                "part {i}/{n}: the part index must be below the number of parts (0 to {})",
                n.saturating_sub(1)
            )));
        }
    }
    if let Some(s) = options.shards {
        if s.samples == Some(0) || s.bytes == Some(0) {
            return Err(Error::InvalidArgument(
                "a shard must hold at least one sample (samples_per_shard and shard_size must be positive)"
                    .into(),
            ));
        }
    }
    Ok(())
}
