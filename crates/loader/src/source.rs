//! Where samples come from: a packed file or a manifest decoded just in time.

use std::cell::RefCell;
use std::path::Path;

use stokehold_core::{Limits, Manifest};
use stokehold_image::{
    decode, fit_size, prepare_window, resize_with_thread_resizer, DecodeOptions, Filter, Geometry,
    Pixels, Prepare, ResizePolicy,
};
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
    /// `[height, width, channels]` of every sample (height and width 0
    /// when the samples differ in shape: see [`Source::sample_shape`]).
    fn image_shape(&self) -> [usize; 3];
    /// `[height, width, channels]` of sample `index` as [`Source::load`]
    /// writes it.
    fn sample_shape(&self, _index: usize) -> [usize; 3] {
        self.image_shape()
    }
    /// Class names.
    fn classes(&self) -> &[String];
    /// Per-channel mean and std on the 0–255 scale, when known.
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)>;
    /// Writes sample `index`'s pixels (`H × W × C` bytes) into `out` and
    /// returns its label and boxes.
    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error>;

    /// Called with a batch's samples before they are loaded, on the thread
    /// that loads them: a source in object storage fetches them together
    /// here. Nothing by default.
    fn prefetch(&self, _indices: &[usize]) {}

    /// `(width, height)` of sample `index` as the source holds it, before
    /// any resize, when known without reading it (what a random resized
    /// crop is drawn on).
    fn size_of(&self, _index: usize) -> Option<(u32, u32)> {
        let [h, w, _] = self.image_shape();
        Some((w as u32, h as u32))
    }

    /// Sample `index` with only `window` (`[x, y, w, h]` as fractions of
    /// its width and height) resized onto the whole of `out`; boxes follow.
    /// By default the window is cut from the loaded image; a source that
    /// decodes can do better (the just-in-time source crops the full-size
    /// image, decoding a JPEG at the scale the crop needs).
    fn load_window(
        &self,
        index: usize,
        out: &mut [u8],
        window: [f64; 4],
    ) -> Result<SampleData, Error> {
        let mut data = self.load(index, out)?;
        let [h, w, c] = self.image_shape();
        crate::transform::crop_resize(
            out,
            [h, w, c],
            window,
            &mut data.boxes,
            &mut data.box_labels,
        );
        Ok(data)
    }
    /// Sample `index` resized (both axes independently) to exactly
    /// `[height, width]`; boxes follow. By default the loaded sample is
    /// resized; the just-in-time source decodes straight to the size (a
    /// JPEG at the DCT scale it needs).
    fn load_resized(
        &self,
        index: usize,
        out: &mut [u8],
        [h, w]: [usize; 2],
    ) -> Result<SampleData, Error> {
        let [sh, sw, c] = self.sample_shape(index);
        if (sh, sw) == (h, w) {
            return self.load(index, &mut out[..h * w * c]);
        }
        NATURAL.with(|cell| {
            let natural = &mut *cell.borrow_mut();
            natural.resize(sh * sw * c, 0);
            let mut data = self.load(index, natural)?;
            let geometry = Geometry::new(
                ResizePolicy::Stretch,
                sw as u32,
                sh as u32,
                w as u32,
                h as u32,
            );
            let src = Pixels {
                width: sw as u32,
                height: sh as u32,
                channels: c as u8,
                data: std::mem::take(natural),
            };
            let done = resize_with_thread_resizer(
                Filter::Bilinear,
                &src,
                &geometry,
                0,
                &mut out[..h * w * c],
            );
            *natural = src.data;
            done.map_err(|e| Error::Sample {
                index,
                path: String::new(),
                reason: e.to_string(),
            })?;
            map_boxes(&geometry, &mut data);
            Ok(data)
        })
    }

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
    // Per worker: a sample at its own size, before a resize.
    static NATURAL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Maps a sample's boxes through `geometry`, dropping those left without area.
fn map_boxes(geometry: &Geometry, data: &mut SampleData) {
    let mut kept = 0;
    for i in 0..data.boxes.len() {
        if let Some(b) = geometry.map_box(data.boxes[i]) {
            data.boxes[kept] = b;
            data.box_labels[kept] = data.box_labels[i];
            kept += 1;
        }
    }
    data.boxes.truncate(kept);
    data.box_labels.truncate(kept);
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

    /// Serves an opened dataset (a local one, or one in object storage).
    pub fn from_dataset(reader: PackedDataset) -> Self {
        PackedSource { reader }
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

    fn sample_shape(&self, index: usize) -> [usize; 3] {
        self.reader.sample_shape(index)
    }

    fn classes(&self) -> &[String] {
        &self.reader.info().attrs.classes
    }

    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let a = &self.reader.info().attrs;
        Some((a.mean.clone(), a.std.clone()))
    }

    fn prefetch(&self, indices: &[usize]) {
        self.reader.prefetch(indices);
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
        let c = self.prepare.decode.channels as usize;
        if self.prepare.resize == ResizePolicy::Fit {
            return [0, 0, c];
        }
        let (h, w) = self.prepare.size;
        [h as usize, w as usize, c]
    }

    fn sample_shape(&self, index: usize) -> [usize; 3] {
        if self.prepare.resize != ResizePolicy::Fit {
            return self.image_shape();
        }
        let s = &self.manifest.samples[index];
        let p = &self.prepare;
        let (w, h) = fit_size(s.width, s.height, p.max_size, p.multiple);
        [h as usize, w as usize, p.decode.channels as usize]
    }

    fn load_resized(
        &self,
        index: usize,
        out: &mut [u8],
        [h, w]: [usize; 2],
    ) -> Result<SampleData, Error> {
        let prepare = Prepare {
            size: (h as u32, w as u32),
            resize: ResizePolicy::Stretch,
            ..self.prepare
        };
        let c = self.prepare.decode.channels as usize;
        self.load_inner(index, &mut out[..h * w * c], None, &prepare)
    }

    fn classes(&self) -> &[String] {
        &self.manifest.classes
    }

    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.stats.clone()
    }

    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error> {
        self.load_inner(index, out, None, &self.sized(index))
    }

    fn size_of(&self, index: usize) -> Option<(u32, u32)> {
        let s = &self.manifest.samples[index];
        Some((s.width, s.height))
    }

    fn load_window(
        &self,
        index: usize,
        out: &mut [u8],
        window: [f64; 4],
    ) -> Result<SampleData, Error> {
        self.load_inner(index, out, Some(window), &self.sized(index))
    }
}

impl JitSource {
    /// The preparation of sample `index`: under `fit`, to its own size.
    fn sized(&self, index: usize) -> Prepare {
        let [h, w, _] = self.sample_shape(index);
        Prepare {
            size: (h as u32, w as u32),
            ..self.prepare
        }
    }

    fn load_inner(
        &self,
        index: usize,
        out: &mut [u8],
        window: Option<[f64; 4]>,
        prepare: &Prepare,
    ) -> Result<SampleData, Error> {
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
            prepare_window(bytes, prepare, window, out).map_err(|e| fail(e.to_string()))
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
