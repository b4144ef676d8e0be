//! Where samples come from: a packed file or a manifest decoded just in time.

use std::cell::RefCell;
use std::path::Path;

use stokehold_core::{Limits, Manifest};
use stokehold_image::{decode, prepare_into, DecodeOptions, Prepare};
use stokehold_store::{PackedDataset, Storage};

use crate::Error;

/// One sample's annotations (its pixels go into the caller's buffer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleData {
    /// Class index, -1 for none.
    pub label: i64,
    /// Boxes in output-image pixels.
    pub boxes: Vec<[f32; 4]>,
    /// Class index of each box.
    pub box_labels: Vec<i64>,
}

/// Fixed-size samples by index, readable from any thread.
pub trait Source: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `[height, width, channels]` of every sample.
    fn image_shape(&self) -> [usize; 3];
    /// Class names.
    fn classes(&self) -> &[String];
    /// Per-channel mean and std on the 0–255 scale, when known.
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)>;
    /// Writes sample `index`'s pixels (`H × W × C` bytes) into `out` and
    /// returns its label and boxes.
    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error>;
    /// A hash of the data's identity (size, shape, classes).
    fn fingerprint(&self) -> u64 {
        let [h, w, c] = self.image_shape();
        let mut x = self.len() as u64;
        for v in [h, w, c, self.classes().len()] {
            x = crate::plan::splitmix64(x ^ v as u64);
        }
        x
    }
}

thread_local! {
    // Per worker: the encoded bytes of the sample being decoded.
    static BYTES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A packed file or a dataset directory of shards: every sample is one
/// `pread` at an address resolved when it was opened; encoded samples are
/// decoded in the workers.
#[derive(Debug)]
pub struct PackedSource {
    reader: PackedDataset,
}

impl PackedSource {
    /// Opens and validates a packed file, or a dataset directory (or its
    /// `dataset.json`).
    pub fn open(path: &Path) -> Result<Self, stokehold_store::Error> {
        Ok(PackedSource {
            reader: PackedDataset::open(path, Limits::DEFAULT_MAX_SOURCE_BYTES)?,
        })
    }

    /// The underlying dataset.
    pub fn reader(&self) -> &PackedDataset {
        &self.reader
    }
}

impl Source for PackedSource {
    fn len(&self) -> usize {
        self.reader.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.reader.info().image_shape
    }

    fn classes(&self) -> &[String] {
        &self.reader.info().attrs.classes
    }

    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let a = &self.reader.info().attrs;
        Some((a.mean.clone(), a.std.clone()))
    }

    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error> {
        let fail = |reason: String| Error::Sample {
            index,
            path: self.reader.path().display().to_string(),
            reason,
        };
        match &self.reader.info().storage {
            Storage::Raw => self
                .reader
                .read_raw(index, out)
                .map_err(|e| fail(e.to_string()))?,
            Storage::Encoded { .. } => {
                let [h, w, c] = self.reader.sample_shape(index);
                let px = BYTES.with(|cell| {
                    let bytes = &mut *cell.borrow_mut();
                    self.reader
                        .read_bytes(index, bytes)
                        .map_err(|e| fail(e.to_string()))?;
                    let options = DecodeOptions {
                        channels: c as u8,
                        ..DecodeOptions::default()
                    };
                    decode(bytes, &options).map_err(|e| fail(e.to_string()))
                })?;
                if (px.height as usize, px.width as usize) != (h, w) || px.data.len() != out.len() {
                    return Err(fail(format!(
                        "decoded {}x{}, the file says {h}x{w}",
                        px.height, px.width
                    )));
                }
                out.copy_from_slice(&px.data);
            }
        }
        let (boxes, labels) = self.reader.boxes(index);
        Ok(SampleData {
            label: self.reader.label(index),
            boxes: boxes.to_vec(),
            box_labels: labels.to_vec(),
        })
    }
}

/// A manifest of image files, decoded and resized in the workers with the
/// same code and policies as `pack`.
#[derive(Debug)]
pub struct JitSource {
    manifest: Manifest,
    prepare: Prepare,
    stats: Option<(Vec<f64>, Vec<f64>)>,
    max_file_bytes: u64,
}

impl JitSource {
    /// Serves `manifest` at `prepare.size` (see `stokehold_pack::PackOptions::prepare`).
    /// `stats` are the mean/std to normalize with (none are computed here).
    /// Image files are read only when they are regular files of at most
    /// [`Limits::DEFAULT_MAX_FILE_BYTES`] ([`JitSource::max_file_bytes`]
    /// changes it); `prepare.decode.max_pixels` bounds the pixels.
    pub fn new(manifest: Manifest, prepare: Prepare, stats: Option<(Vec<f64>, Vec<f64>)>) -> Self {
        JitSource {
            manifest,
            prepare,
            stats,
            max_file_bytes: Limits::DEFAULT_MAX_FILE_BYTES,
        }
    }

    /// The same source refusing image files larger than `n` bytes.
    pub fn max_file_bytes(mut self, n: u64) -> Self {
        self.max_file_bytes = n;
        self
    }
}

impl Source for JitSource {
    fn len(&self) -> usize {
        self.manifest.samples.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        let (h, w) = self.prepare.size;
        [
            h as usize,
            w as usize,
            self.prepare.decode.channels as usize,
        ]
    }

    fn classes(&self) -> &[String] {
        &self.manifest.classes
    }

    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.stats.clone()
    }

    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error> {
        let sample = &self.manifest.samples[index];
        let fail = |reason: String| Error::Sample {
            index,
            path: sample.path.display().to_string(),
            reason,
        };
        let (geometry, _) = BYTES.with(|cell| {
            let bytes = &mut *cell.borrow_mut();
            *bytes = stokehold_core::fsutil::read_capped(
                &sample.path,
                self.max_file_bytes,
                "max_file_bytes",
            )
            .map_err(|e| fail(format!("cannot read: {e}")))?;
            prepare_into(bytes, &self.prepare, out).map_err(|e| fail(e.to_string()))
        })?;
        let mut data = SampleData {
            label: sample.label.map_or(-1, i64::from),
            ..SampleData::default()
        };
        for b in &sample.boxes {
            if let Some(mapped) = geometry.map_box(b.bbox) {
                data.boxes.push(mapped);
                data.box_labels.push(i64::from(b.label));
            }
        }
        Ok(data)
    }
}
