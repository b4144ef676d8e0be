//! Reading a packed file: metadata once at open, samples with `pread`.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hdf5::types::{VarLenArray, VarLenUnicode};
use hdf5::{Dataset, File};
use ndarray::s;

use crate::error::{Error, Hdf5Context};
use crate::format::*;

/// The root attributes of a packed file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    /// Format version of the file.
    pub format_version: u32,
    /// Number of samples.
    pub num_samples: usize,
    /// `[height, width, channels]`.
    pub image_shape: [usize; 3],
    /// `raw` or `encoded` storage.
    pub storage: Storage,
    /// Everything the packer recorded: classes, mean/std, resize policy…
    pub attrs: Attrs,
    /// Samples per class.
    pub class_counts: Vec<u64>,
    /// Which stokehold wrote it.
    pub created_by: String,
}

/// An open packed file. Metadata (labels, boxes) is read once at open;
/// raw samples are read with `pread` at byte addresses resolved at open,
/// so [`StoreReader::read_raw`] never enters libhdf5 and scales with threads.
#[derive(Debug)]
pub struct StoreReader {
    path: PathBuf,
    h5: File,
    /// Plain file handle for `pread`: `read_at` takes `&self`, no lock.
    raw: std::fs::File,
    info: StoreInfo,
    images_offset: u64,
    sample_bytes: usize,
    encoded: Option<Dataset>,
    labels: Vec<i64>,
    boxes: Vec<[f32; 4]>,
    box_labels: Vec<i64>,
    box_offsets: Vec<i64>,
}

fn attr_text(f: &File, name: &str) -> hdf5::Result<String> {
    Ok(f.attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_owned())
}

fn attr_text_or(f: &File, name: &str, default: &str) -> String {
    attr_text(f, name).unwrap_or_else(|_| default.to_owned())
}

impl StoreReader {
    /// Opens and validates a packed file.
    pub fn open(path: &Path) -> Result<StoreReader, Error> {
        let io = |e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let raw = std::fs::File::open(path).map_err(io)?;
        let file_len = raw.metadata().map_err(io)?.len();
        let bad = |reason: String| Error::Format {
            path: path.to_path_buf(),
            reason,
        };
        let h5 = File::open(path).map_err(|e| bad(format!("not an HDF5 file ({e})")))?;
        match attr_text(&h5, "format") {
            Ok(f) if f == FORMAT => {}
            _ => {
                return Err(bad(
                    "not a stokehold file (no format = \"stokehold\" attribute)".into(),
                ))
            }
        }
        let format_version = h5
            .attr("format_version")
            .and_then(|a| a.read_scalar::<u32>())
            .at(path)?;
        if format_version > FORMAT_VERSION {
            return Err(bad(format!(
                "format version {format_version} is newer than this stokehold reads ({FORMAT_VERSION})"
            )));
        }
        let num_samples = h5
            .attr("num_samples")
            .and_then(|a| a.read_scalar::<i64>())
            .at(path)? as usize;
        let shape: Vec<i64> = h5.attr("image_shape").and_then(|a| a.read_raw()).at(path)?;
        let image_shape: [usize; 3] = match shape[..] {
            [h, w, c] if h > 0 && w > 0 && (c == 1 || c == 3) => {
                [h as usize, w as usize, c as usize]
            }
            _ => return Err(bad(format!("image_shape {shape:?} is not (H, W, 1 or 3)"))),
        };
        let storage = match attr_text(&h5, "storage").at(path)?.as_str() {
            "raw" => Storage::Raw,
            "encoded" => Storage::Encoded {
                codec: attr_text(&h5, "codec").at(path)?,
            },
            other => return Err(bad(format!("unknown storage {other:?}"))),
        };
        let classes: Vec<String> = h5
            .attr("classes")
            .and_then(|a| a.read_raw::<VarLenUnicode>())
            .at(path)?
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let attrs = Attrs {
            mean: h5.attr("mean").and_then(|a| a.read_raw()).at(path)?,
            std: h5.attr("std").and_then(|a| a.read_raw()).at(path)?,
            resize: attr_text_or(&h5, "resize", "stretch"),
            filter: attr_text_or(&h5, "filter", "bilinear"),
            fill: h5
                .attr("fill")
                .and_then(|a| a.read_scalar::<i64>())
                .unwrap_or(0) as u8,
            quality: h5
                .attr("quality")
                .and_then(|a| a.read_scalar::<i64>())
                .ok()
                .map(|q| q as u8),
            source: attr_text_or(&h5, "source", ""),
            classes,
        };
        let class_counts: Vec<i64> = h5
            .attr("class_counts")
            .and_then(|a| a.read_raw())
            .unwrap_or_default();
        let created_by = attr_text_or(&h5, "created_by", "");

        let read_i64 = |name: &str| h5.dataset(name).and_then(|d| d.read_raw::<i64>()).at(path);
        let labels = read_i64(LABELS)?;
        let box_labels = read_i64(BOX_LABELS)?;
        let box_offsets = read_i64(BOX_OFFSETS)?;
        let flat: Vec<f32> = h5.dataset(BOXES).and_then(|d| d.read_raw()).at(path)?;
        let boxes: Vec<[f32; 4]> = flat
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        if labels.len() != num_samples || box_offsets.len() != num_samples + 1 {
            return Err(bad(format!(
                "{num_samples} samples, but {} labels and {} box offsets",
                labels.len(),
                box_offsets.len()
            )));
        }
        let box_count = boxes.len() as i64;
        if box_labels.len() != boxes.len()
            || box_offsets.first() != Some(&0)
            || box_offsets.last() != Some(&box_count)
            || box_offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("box_offsets do not index the boxes in order".into()));
        }

        let sample_bytes = image_shape.iter().product::<usize>();
        let (mut images_offset, mut encoded) = (0, None);
        match &storage {
            Storage::Raw => {
                let ds = h5.dataset(IMAGES).at(path)?;
                let expected = [num_samples, image_shape[0], image_shape[1], image_shape[2]];
                if ds.shape() != expected {
                    return Err(bad(format!(
                        "/images has shape {:?}, expected {expected:?}",
                        ds.shape()
                    )));
                }
                if ds.dtype().map(|t| t.size()).ok() != Some(1) || ds.is_chunked() {
                    return Err(bad("/images is not a contiguous uint8 array".into()));
                }
                if num_samples > 0 {
                    images_offset = ds
                        .offset()
                        .ok_or_else(|| bad("/images has no storage allocated".into()))?;
                    let end = images_offset + (num_samples * sample_bytes) as u64;
                    if end > file_len {
                        return Err(bad(format!(
                            "/images ends at byte {end}, past the end of the file ({file_len} bytes): truncated?"
                        )));
                    }
                }
            }
            Storage::Encoded { .. } => {
                let ds = h5.dataset(ENCODED).at(path)?;
                if ds.shape() != [num_samples] {
                    return Err(bad(format!(
                        "/encoded has shape {:?}, expected [{num_samples}]",
                        ds.shape()
                    )));
                }
                encoded = Some(ds);
            }
        }
        let info = StoreInfo {
            format_version,
            num_samples,
            image_shape,
            storage,
            attrs,
            class_counts: class_counts.into_iter().map(|c| c.max(0) as u64).collect(),
            created_by,
        };
        Ok(StoreReader {
            path: path.to_path_buf(),
            h5,
            raw,
            info,
            images_offset,
            sample_bytes,
            encoded,
            labels,
            boxes,
            box_labels,
            box_offsets,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Attributes and shape.
    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.info.num_samples
    }

    /// Whether the file holds no sample.
    pub fn is_empty(&self) -> bool {
        self.info.num_samples == 0
    }

    /// Bytes of one raw sample (`H × W × C`).
    pub fn sample_bytes(&self) -> usize {
        self.sample_bytes
    }

    fn check(&self, index: usize) -> Result<(), Error> {
        if index >= self.info.num_samples {
            return Err(Error::OutOfRange {
                index,
                len: self.info.num_samples,
            });
        }
        Ok(())
    }

    /// Reads raw sample `index` into `out` (`sample_bytes()` long) with one
    /// `pread`: no libhdf5 call, safe from any number of threads.
    pub fn read_raw(&self, index: usize, out: &mut [u8]) -> Result<(), Error> {
        self.check(index)?;
        if self.info.storage != Storage::Raw {
            return Err(Error::Format {
                path: self.path.clone(),
                reason: "the file holds encoded images, not raw".into(),
            });
        }
        if out.len() != self.sample_bytes {
            return Err(Error::BadSample {
                index,
                reason: format!(
                    "buffer of {} bytes, a sample has {}",
                    out.len(),
                    self.sample_bytes
                ),
            });
        }
        let offset = self.images_offset + (index * self.sample_bytes) as u64;
        self.raw.read_exact_at(out, offset).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                e.kind(),
                format!("reading sample {index} at byte offset {offset}: {e}"),
            ),
        })
    }

    /// Reads encoded sample `index` (through libhdf5, under its lock: the
    /// decode that follows costs far more).
    pub fn read_encoded(&self, index: usize) -> Result<Vec<u8>, Error> {
        self.check(index)?;
        let ds = self.encoded.as_ref().ok_or_else(|| Error::Format {
            path: self.path.clone(),
            reason: "the file holds raw images, not encoded".into(),
        })?;
        let one = ds
            .read_slice_1d::<VarLenArray<u8>, _>(s![index..index + 1])
            .at(&self.path)?;
        Ok(one[0].as_slice().to_vec())
    }

    /// Class index of sample `index` (-1: none).
    pub fn label(&self, index: usize) -> i64 {
        self.labels[index]
    }

    /// All labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Boxes (stored-image pixels) and their labels of sample `index`.
    pub fn boxes(&self, index: usize) -> (&[[f32; 4]], &[i64]) {
        let (a, b) = (
            self.box_offsets[index] as usize,
            self.box_offsets[index + 1] as usize,
        );
        (&self.boxes[a..b], &self.box_labels[a..b])
    }

    /// Total number of boxes.
    pub fn num_boxes(&self) -> usize {
        self.boxes.len()
    }

    /// Source path of sample `index` (read through libhdf5).
    pub fn source_path(&self, index: usize) -> Result<String, Error> {
        self.check(index)?;
        let ds = self.h5.dataset(PATHS).at(&self.path)?;
        let one = ds
            .read_slice_1d::<VarLenUnicode, _>(s![index..index + 1])
            .at(&self.path)?;
        Ok(one[0].as_str().to_owned())
    }
}
