//! Names and attributes of the packed file, format versions 1 and 2.

/// The `format` attribute of every stokehold file.
pub const FORMAT: &str = "stokehold";
/// The format version this build writes (and the newest it reads).
///
/// Version 2: encoded images (and raw images of varying shape) are one
/// contiguous `/data` byte array with an `/offsets` table, so every sample
/// is one `pread`; the class list and counts are datasets (an HDF5
/// attribute holds at most 64 kB); exact pixel sums are kept so that
/// shards merge their statistics exactly.
pub const FORMAT_VERSION: u32 = 2;

pub(crate) const IMAGES: &str = "images";
/// Version 1 encoded storage: one variable-length row per sample.
pub(crate) const ENCODED: &str = "encoded";
pub(crate) const DATA: &str = "data";
pub(crate) const OFFSETS: &str = "offsets";
pub(crate) const SHAPES: &str = "shapes";
pub(crate) const CLASSES: &str = "classes";
pub(crate) const CLASS_COUNTS: &str = "class_counts";
pub(crate) const LABELS: &str = "labels";
pub(crate) const BOXES: &str = "boxes";
pub(crate) const BOX_LABELS: &str = "box_labels";
pub(crate) const BOX_OFFSETS: &str = "box_offsets";
pub(crate) const PATHS: &str = "paths";
pub(crate) const ORIG_SIZES: &str = "orig_sizes";
pub(crate) const SOURCE_INDEX: &str = "source_index";

/// How pixels are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Raw `uint8` pixels: `/images (N, H, W, C)` when every sample has the
    /// shape `image_shape`, else `/data` + `/offsets` + `/shapes`.
    Raw,
    /// One encoded image per sample (`codec` is `"jpeg"` or `"png"`).
    Encoded {
        /// The codec's name.
        codec: String,
    },
}

impl Storage {
    /// `"raw"` or `"encoded"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Raw => "raw",
            Storage::Encoded { .. } => "encoded",
        }
    }
}

/// Exact per-channel pixel sums of what a file stores: the statistics of
/// several files (shards) merge exactly from these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PixelSums {
    /// Pixels counted (per channel).
    pub count: u64,
    /// Sum of the values, per channel.
    pub sum: Vec<u64>,
    /// Sum of the squared values, per channel.
    pub sum_sq: Vec<u64>,
}

impl PixelSums {
    /// Empty sums for `channels` channels.
    pub fn new(channels: usize) -> Self {
        PixelSums {
            count: 0,
            sum: vec![0; channels],
            sum_sq: vec![0; channels],
        }
    }

    /// Adds the pixels of one interleaved image.
    pub fn add_pixels(&mut self, pixels: &[u8]) {
        let c = self.sum.len();
        if c == 0 {
            return;
        }
        // Per image the sums fit u64 easily; keep them in registers.
        let mut s = [0u64; 4];
        let mut s2 = [0u64; 4];
        for px in pixels.chunks_exact(c) {
            for (k, &v) in px.iter().enumerate() {
                let v = u64::from(v);
                s[k] += v;
                s2[k] += v * v;
            }
        }
        for k in 0..c {
            self.sum[k] += s[k];
            self.sum_sq[k] += s2[k];
        }
        self.count += (pixels.len() / c) as u64;
    }

    /// Adds another file's sums.
    pub fn merge(&mut self, other: &PixelSums) {
        self.count += other.count;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sum_sq.iter_mut().zip(&other.sum_sq) {
            *a += b;
        }
    }

    /// Per-channel `(mean, std)` on the 0–255 scale (population std).
    pub fn mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.count.max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|&s| s as f64 / n).collect();
        let std = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(&s2, m)| (s2 as f64 / n - m * m).max(0.0).sqrt())
            .collect();
        (mean, std)
    }
}

/// The root attributes the packer decides (the writer adds the format,
/// version, sample count, shape, storage, class counts and sums itself).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs {
    /// Class names.
    pub classes: Vec<String>,
    /// Per-channel mean of every stored pixel, 0–255 scale.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation of every stored pixel, 0–255 scale.
    pub std: Vec<f64>,
    /// Resize policy (`stretch`, `letterbox`, `crop`).
    pub resize: String,
    /// Resampling filter.
    pub filter: String,
    /// Letterbox fill value.
    pub fill: u8,
    /// JPEG quality of encoded storage, if any.
    pub quality: Option<u8>,
    /// What the file was packed from.
    pub source: String,
}
