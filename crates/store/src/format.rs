//! Names and attributes of format version 1.

/// The `format` attribute of every stokehold file.
pub const FORMAT: &str = "stokehold";
/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;

pub(crate) const IMAGES: &str = "images";
pub(crate) const ENCODED: &str = "encoded";
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
    /// `/images`: `uint8 (N, H, W, C)`, contiguous, uncompressed.
    Raw,
    /// `/encoded`: one encoded image per sample (`codec` is `"jpeg"` or `"png"`).
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

/// The root attributes the packer decides (the writer adds the format,
/// version, sample count, shape, storage and class counts itself).
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
