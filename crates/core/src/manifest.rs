//! The manifest: a dataset's classes and samples.

use std::path::PathBuf;

use crate::Finding;

/// The encoded format of an image file, read from its header.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG.
    Png,
    /// GIF.
    Gif,
    /// Windows bitmap.
    Bmp,
    /// WebP.
    Webp,
    /// TIFF.
    Tiff,
}

impl ImageFormat {
    /// The lower-case name used in manifests (`"jpeg"`, `"png"`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One bounding box: `x_min, y_min, x_max, y_max` in source-image pixels
/// (continuous coordinates: a box covering the whole `W × H` image is
/// `[0, 0, W, H]`), with its class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxAnn {
    /// `[x_min, y_min, x_max, y_max]`.
    pub bbox: [f32; 4],
    /// Class index into [`Manifest::classes`].
    pub label: u32,
    /// COCO's `iscrowd` flag.
    pub iscrowd: bool,
    /// Pascal VOC's `difficult` flag.
    pub difficult: bool,
}

impl BoxAnn {
    /// A plain box (not crowd, not difficult).
    pub fn new(bbox: [f32; 4], label: u32) -> Self {
        BoxAnn {
            bbox,
            label,
            iscrowd: false,
            difficult: false,
        }
    }

    /// Width × height; zero for an empty or inverted box.
    pub fn area(&self) -> f32 {
        let [x0, y0, x1, y1] = self.bbox;
        (x1 - x0).max(0.0) * (y1 - y0).max(0.0)
    }
}

/// One image of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Absolute path of the image file.
    pub path: PathBuf,
    /// Class index into [`Manifest::classes`]; `None` for an image with no
    /// class (a detection image without boxes).
    pub label: Option<u32>,
    /// Width in pixels, as stored in the file.
    pub width: u32,
    /// Height in pixels, as stored in the file.
    pub height: u32,
    /// Encoded format.
    pub format: ImageFormat,
    /// Boxes, in source pixels.
    pub boxes: Vec<BoxAnn>,
}

/// Which kind of source a manifest was built from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum SourceFormat {
    /// A class-per-folder tree.
    Folder,
    /// A CSV file.
    Csv,
    /// A COCO instances JSON file.
    Coco,
    /// A Pascal VOC folder.
    Voc,
    /// A stokehold JSON-lines manifest.
    Manifest,
}

impl SourceFormat {
    /// All formats, in the order auto-detection documents them.
    pub const ALL: [SourceFormat; 5] = [
        SourceFormat::Folder,
        SourceFormat::Csv,
        SourceFormat::Coco,
        SourceFormat::Voc,
        SourceFormat::Manifest,
    ];

    /// The lower-case name (`"folder"`, `"csv"`, `"coco"`, `"voc"`, `"manifest"`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a manifest came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// The kind of source.
    pub format: SourceFormat,
    /// The source's path, as given to `index`.
    pub path: PathBuf,
}

/// A dataset's high-level representation: its classes and its samples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// Where it was built from, when known.
    pub source: Option<SourceInfo>,
    /// The samples, in a deterministic order.
    pub samples: Vec<Sample>,
    /// Problems met while building it (not saved in the JSON-lines form).
    pub findings: Vec<Finding>,
}

impl Manifest {
    /// An empty manifest with these classes.
    pub fn new(classes: Vec<String>) -> Self {
        Manifest {
            classes,
            ..Manifest::default()
        }
    }

    /// The name of a class index, if it is one.
    pub fn class_name(&self, label: Option<u32>) -> Option<&str> {
        label.and_then(|l| self.classes.get(l as usize).map(String::as_str))
    }

    /// Total number of boxes over all samples.
    pub fn num_boxes(&self) -> usize {
        self.samples.iter().map(|s| s.boxes.len()).sum()
    }

    /// Number of samples per class, indexed like [`Manifest::classes`].
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for label in self.samples.iter().filter_map(|s| s.label) {
            if let Some(c) = counts.get_mut(label as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Findings that left a sample out, counted by kind, in kind order.
    pub fn skipped_by_kind(&self) -> Vec<(crate::FindingKind, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.skipped) {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    /// One line that sums the manifest up: samples, classes, boxes and what
    /// was skipped or repaired, by reason.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} samples, {} classes, {} boxes",
            self.samples.len(),
            self.classes.len(),
            self.num_boxes()
        );
        let skipped = self.skipped_by_kind();
        let n_skipped: usize = skipped.iter().map(|(_, n)| n).sum();
        if n_skipped == 0 {
            line.push_str("; nothing skipped");
        } else {
            let parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
            line.push_str(&format!("; skipped {n_skipped} ({})", parts.join(", ")));
        }
        let repaired = self.findings.iter().filter(|f| !f.skipped).count();
        if repaired > 0 {
            let mut by_kind = std::collections::BTreeMap::new();
            for f in self.findings.iter().filter(|f| !f.skipped) {
                *by_kind.entry(f.kind).or_insert(0) += 1;
            }
            let parts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            line.push_str(&format!("; repaired {repaired} ({})", parts.join(", ")));
        }
        line
    }
}

/// Samples by index, from memory ([`Manifest`]) or read on demand
/// ([`crate::ManifestFile`]): what a pack goes through once, in order.
pub trait SampleSource: Sync {
    /// Class names; labels index this list.
    fn classes(&self) -> &[String];
    /// Where the samples come from, when known.
    fn source(&self) -> Option<&SourceInfo>;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `index` (borrowed when in memory).
    fn sample(&self, index: usize) -> Result<std::borrow::Cow<'_, Sample>, crate::Error>;
}

impl SampleSource for Manifest {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn source(&self) -> Option<&SourceInfo> {
        self.source.as_ref()
    }

    fn len(&self) -> usize {
        self.samples.len()
    }

    fn sample(&self, index: usize) -> Result<std::borrow::Cow<'_, Sample>, crate::Error> {
        Ok(std::borrow::Cow::Borrowed(&self.samples[index]))
    }
}
