//! Reading a packed file: metadata once at open, samples with `pread`.
//!
//! Nothing read from the file is trusted: every size is checked against
//! the file's length (and for overflow) before anything is allocated,
//! every string is checked to be UTF-8, labels against the class list,
//! statistics and boxes for finite values, and the pixel data must lie
//! inside this very file (not behind an external link, in external
//! storage, or in a layout the `pread` path does not read).

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use hdf5::types::{TypeDescriptor, VarLenArray, VarLenUnicode};
use hdf5::{Dataset, File, H5Type};
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
    /// `[height, width, channels]`; height and width are 0 when each
    /// sample has its own ([`StoreReader::sample_shape`]).
    pub image_shape: [usize; 3],
    /// `raw` or `encoded` storage.
    pub storage: Storage,
    /// Everything the packer recorded: classes, mean/std, resize policy…
    pub attrs: Attrs,
    /// Samples per class.
    pub class_counts: Vec<u64>,
    /// Exact pixel sums (format 2; empty for format 1).
    pub sums: PixelSums,
    /// Which stokehold wrote it.
    pub created_by: String,
}

/// Where the samples' bytes are.
#[derive(Debug)]
enum Layout {
    /// Raw, one shape: sample `i` at `offset + i × sample_bytes`.
    Fixed { offset: u64, sample_bytes: usize },
    /// Format 2 `/data`: sample `i` is bytes `offsets[i]..offsets[i + 1]`
    /// from `offset`.
    Table {
        offset: u64,
        offsets: Vec<u64>,
        shapes: Option<Vec<[u32; 3]>>,
    },
    /// Format 1 encoded storage: a variable-length dataset, read through
    /// libhdf5.
    VarLen(Dataset),
}

/// What identifies the file's content at open: if any of it changes, the
/// file was rewritten (e.g. `cp other.h5 data.h5` over an open file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
    ino: u64,
}

impl Identity {
    fn of(file: &std::fs::File) -> std::io::Result<Identity> {
        let m = file.metadata()?;
        Ok(Identity {
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ino: m.ino(),
        })
    }
}

/// An open packed file. Metadata (labels, boxes, sample addresses) is read
/// once at open; samples are read with `pread` at byte addresses resolved at
/// open, so [`StoreReader::read_raw`] and [`StoreReader::read_bytes`] never
/// enter libhdf5 (except for format 1 encoded files) and scale with
/// threads.
#[derive(Debug)]
pub struct StoreReader {
    path: PathBuf,
    h5: File,
    /// Plain file handle for `pread`: `read_at` takes `&self`, no lock.
    raw: std::fs::File,
    identity: Identity,
    info: StoreInfo,
    layout: Layout,
    labels: Vec<i64>,
    boxes: Vec<[f32; 4]>,
    box_labels: Vec<i64>,
    box_offsets: Vec<i64>,
}

/// Reads and checks the file's metadata.
struct Opener<'a> {
    path: &'a Path,
    h5: &'a File,
    file_len: u64,
}

impl Opener<'_> {
    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The most bytes a dataset may expand to: its stored bytes must be in
    /// the file, unless a filter (compression) expands them, and then by
    /// no more than 1024 times.
    fn byte_bound(&self, ds: &Dataset) -> u64 {
        if ds.filters().is_empty() {
            self.file_len
        } else {
            self.file_len.saturating_mul(1024)
        }
    }

    /// Opens dataset `name`, checks that its shape is `shape` (`None`: any
    /// length) and that its size is plausible for the file, before anything
    /// is allocated for it.
    fn dataset(&self, name: &str, shape: &[Option<usize>], elem: u64) -> Result<Dataset, Error> {
        let ds = self
            .h5
            .dataset(name)
            .map_err(|_| self.bad(format!("/{name} is missing")))?;
        let got = ds.shape();
        let matches = got.len() == shape.len()
            && got
                .iter()
                .zip(shape)
                .all(|(g, want)| want.is_none_or(|w| *g == w));
        if !matches {
            let want: Vec<String> = shape
                .iter()
                .map(|d| d.map_or("n".to_string(), |v| v.to_string()))
                .collect();
            let got_text: Vec<String> = got.iter().map(|d| d.to_string()).collect();
            return Err(self.bad(format!(
                "/{name} has shape ({}), expected ({})",
                got_text.join(", "),
                want.join(", ")
            )));
        }
        let bytes = got
            .iter()
            .try_fold(elem, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&b| b <= self.byte_bound(&ds))
            .ok_or_else(|| {
                let got_text: Vec<String> = got.iter().map(|d| d.to_string()).collect();
                self.bad(format!(
                    "/{name} claims shape ({}), more data than the {}-byte file can hold: damaged",
                    got_text.join(", "),
                    self.file_len
                ))
            })?;
        let _ = bytes;
        Ok(ds)
    }

    fn read<T: H5Type>(&self, name: &str, shape: &[Option<usize>]) -> Result<Vec<T>, Error> {
        let ds = self.dataset(name, shape, std::mem::size_of::<T>() as u64)?;
        ds.read_raw::<T>().at(self.path)
    }

    fn strings(
        &self,
        ds_or_attr: Result<Vec<VarLenUnicode>, Error>,
        what: &str,
    ) -> Result<Vec<String>, Error> {
        ds_or_attr?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                std::str::from_utf8(s.as_bytes())
                    .map(str::to_owned)
                    .map_err(|_| self.bad(format!("{what} {i} is not valid UTF-8 text")))
            })
            .collect()
    }

    /// A text attribute, checked to be UTF-8.
    fn text(&self, name: &str) -> Result<Option<String>, Error> {
        let Ok(attr) = self.h5.attr(name) else {
            return Ok(None);
        };
        let v = attr
            .read_scalar::<VarLenUnicode>()
            .map_err(|_| self.bad(format!("attribute {name} is not a text scalar")))?;
        std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.to_owned()))
            .map_err(|_| self.bad(format!("attribute {name} is not valid UTF-8 text")))
    }

    fn attr_vec<T: H5Type>(&self, name: &str, max_len: usize) -> Result<Option<Vec<T>>, Error> {
        let Ok(attr) = self.h5.attr(name) else {
            return Ok(None);
        };
        let shape = attr.shape();
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if shape.len() > 1 || n.is_none_or(|n| n > max_len) {
            return Err(self.bad(format!(
                "attribute {name} has shape {shape:?}, expected at most {max_len} values"
            )));
        }
        attr.read_raw::<T>()
            .map(Some)
            .map_err(|_| self.bad(format!("attribute {name} is not an array of numbers")))
    }

    fn scalar<T: H5Type>(&self, name: &str) -> Result<T, Error> {
        self.h5
            .attr(name)
            .and_then(|a| a.read_scalar::<T>())
            .map_err(|_| self.bad(format!("attribute {name} is missing or not a number")))
    }

    /// Checks that the pixel dataset lies, contiguous and uncompressed, in
    /// this file, and returns its byte offset and length.
    fn contiguous_bytes(&self, ds: &Dataset, name: &str, bytes: u64) -> Result<u64, Error> {
        let dtype_ok = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .is_ok_and(|d| d == TypeDescriptor::Unsigned(hdf5::types::IntSize::U1));
        if !dtype_ok {
            return Err(self.bad(format!("/{name} is not an array of uint8")));
        }
        if ds.filename() != self.h5.filename() {
            return Err(self.bad(format!(
                "/{name} is a link into another file ({}); stokehold reads pixels only from the file itself",
                ds.filename()
            )));
        }
        let dcpl = ds.dcpl().at(self.path)?;
        if !dcpl.external().is_empty() {
            return Err(self.bad(format!(
                "/{name} keeps its data in external files; stokehold reads pixels only from the file itself"
            )));
        }
        if ds.layout() != hdf5::dataset::Layout::Contiguous || !ds.filters().is_empty() {
            let layout = match ds.layout() {
                hdf5::dataset::Layout::Compact => "compact",
                hdf5::dataset::Layout::Contiguous => "contiguous",
                hdf5::dataset::Layout::Chunked => "chunked",
                hdf5::dataset::Layout::Virtual => "virtual",
            };
            return Err(self.bad(format!(
                "/{name} is stored {layout}{}; stokehold reads pixels only from a contiguous, uncompressed array \
                 (repack it with stokehold pack, or h5repack -l CONTI)",
                if ds.filters().is_empty() { "" } else { " and filtered (compressed)" }
            )));
        }
        if bytes == 0 {
            return Ok(0);
        }
        let offset = ds
            .offset()
            .ok_or_else(|| self.bad(format!("/{name} has no storage allocated")))?;
        let end = offset.checked_add(bytes).filter(|&e| e <= self.file_len);
        if end.is_none() {
            return Err(self.bad(format!(
                "/{name} ends past the end of the file ({} bytes): truncated?",
                self.file_len
            )));
        }
        Ok(offset)
    }
}

/// How long [`StoreReader::open`] waits for libhdf5 to read a file's
/// metadata: `STOKEHOLD_HDF5_OPEN_TIMEOUT` seconds, 60 by default.
fn open_timeout() -> std::time::Duration {
    let seconds = std::env::var("STOKEHOLD_HDF5_OPEN_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(60.0);
    std::time::Duration::from_secs_f64(seconds)
}

impl StoreReader {
    /// Opens and validates a packed file (format version 1 or 2).
    ///
    /// libhdf5 reads the file's metadata on a helper thread, waited for at
    /// most `STOKEHOLD_HDF5_OPEN_TIMEOUT` seconds (60): a malformed global
    /// heap (a free-space object of size 0) makes libhdf5 loop forever, and
    /// such a file is then an error, not a hang. The looping thread cannot
    /// be stopped: it is left behind, holding libhdf5's lock, so later
    /// HDF5 calls of the process wait (an open times out the same way).
    pub fn open(path: &Path) -> Result<StoreReader, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("stokehold-h5open".into())
            .spawn(move || {
                let _ = tx.send(StoreReader::open_here(&owned));
            });
        if let Err(e) = spawned {
            return Err(Error::io(path, e));
        }
        let limit = open_timeout();
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "libhdf5 did not finish reading the file's metadata in {:.0} s: the file is damaged \
                     (a malformed global heap makes libhdf5 loop; STOKEHOLD_HDF5_OPEN_TIMEOUT sets the wait)",
                    limit.as_secs_f64()
                ),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Error::Format {
                path: path.to_path_buf(),
                reason: "reading the file's metadata failed unexpectedly (libhdf5's thread ended without a result)"
                    .into(),
            }),
        }
    }

    /// [`StoreReader::open`] on this thread, without a time limit.
    fn open_here(path: &Path) -> Result<StoreReader, Error> {
        let io = |e| Error::io(path, e);
        let (raw, file_len) =
            stokehold_core::fsutil::open_regular(path).map_err(|e| Error::io(path, e.into()))?;
        let identity = Identity::of(&raw).map_err(io)?;
        let not_hdf5 = || Error::Format {
            path: path.to_path_buf(),
            reason: "not an HDF5 file (damaged, or not a packed dataset)".into(),
        };
        let mut magic = [0u8; 8];
        if raw.read_exact_at(&mut magic, 0).is_err() || &magic != b"\x89HDF\r\n\x1a\n" {
            return Err(not_hdf5());
        }
        let h5 = File::open(path).map_err(|_| not_hdf5())?;
        let o = Opener {
            path,
            h5: &h5,
            file_len,
        };
        match o.text("format") {
            Ok(Some(f)) if f == FORMAT => {}
            _ => return Err(o.bad("not a stokehold file (no format = \"stokehold\" attribute)")),
        }
        let format_version: u32 = o.scalar("format_version")?;
        if format_version == 0 || format_version > FORMAT_VERSION {
            return Err(o.bad(format!(
                "format version {format_version} is newer than this stokehold reads ({FORMAT_VERSION})"
            )));
        }
        let num_samples: i64 = o.scalar("num_samples")?;
        let n = usize::try_from(num_samples)
            .ok()
            .filter(|&n| n as u64 <= file_len)
            .ok_or_else(|| {
                o.bad(format!(
                    "num_samples = {num_samples} does not fit a {file_len}-byte file"
                ))
            })?;
        let shape = o
            .attr_vec::<i64>("image_shape", 3)?
            .ok_or_else(|| o.bad("attribute image_shape is missing"))?;
        let image_shape: [usize; 3] = match shape[..] {
            [h, w, c] if h > 0 && w > 0 && h <= 1 << 20 && w <= 1 << 20 && (c == 1 || c == 3) => {
                [h as usize, w as usize, c as usize]
            }
            [-1, -1, c] if format_version >= 2 && (c == 1 || c == 3) => [0, 0, c as usize],
            _ => return Err(o.bad(format!("image_shape {shape:?} is not (H, W, 1 or 3)"))),
        };
        let channels = image_shape[2];
        let storage = match o.text("storage")?.as_deref() {
            Some("raw") => Storage::Raw,
            Some("encoded") => Storage::Encoded {
                codec: o.text("codec")?.unwrap_or_default(),
            },
            other => return Err(o.bad(format!("unknown storage {other:?}"))),
        };
        if let Storage::Encoded { codec } = &storage {
            if codec != "jpeg" && codec != "png" {
                return Err(o.bad(format!("unknown codec {codec:?} (expected jpeg or png)")));
            }
        }

        let classes = if format_version >= 2 {
            o.strings(o.read::<VarLenUnicode>(CLASSES, &[None]), "class")?
        } else {
            let attr = o.attr_vec::<VarLenUnicode>("classes", (file_len / 16) as usize)?;
            o.strings(Ok(attr.unwrap_or_default()), "class")?
        };
        let k = classes.len();
        let class_counts: Vec<i64> = if format_version >= 2 {
            o.read(CLASS_COUNTS, &[Some(k)])?
        } else {
            o.attr_vec("class_counts", k)?.unwrap_or_default()
        };
        let stat = |name: &str| -> Result<Vec<f64>, Error> {
            let v = o
                .attr_vec::<f64>(name, channels)?
                .ok_or_else(|| o.bad(format!("attribute {name} is missing")))?;
            if v.len() != channels || !v.iter().all(|x| x.is_finite() && *x >= 0.0) {
                return Err(o.bad(format!(
                    "{name} {v:?} is not {channels} finite, non-negative values"
                )));
            }
            Ok(v)
        };
        let attrs = Attrs {
            mean: stat("mean")?,
            std: stat("std")?,
            resize: o.text("resize")?.unwrap_or_else(|| "stretch".into()),
            filter: o.text("filter")?.unwrap_or_else(|| "bilinear".into()),
            fill: o.scalar::<i64>("fill").unwrap_or(0).clamp(0, 255) as u8,
            quality: o
                .scalar::<i64>("quality")
                .ok()
                .map(|q| q.clamp(0, 100) as u8),
            source: o.text("source")?.unwrap_or_default(),
            classes,
        };
        let sums = if format_version >= 2 {
            PixelSums {
                count: o.scalar("pixel_count").unwrap_or(0),
                sum: o.attr_vec("pixel_sum", channels)?.unwrap_or_default(),
                sum_sq: o.attr_vec("pixel_sum_sq", channels)?.unwrap_or_default(),
            }
        } else {
            PixelSums::default()
        };
        let created_by = o.text("created_by")?.unwrap_or_default();

        let labels: Vec<i64> = o.read(LABELS, &[Some(n)])?;
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l < -1 || l >= k as i64)
        {
            return Err(o.bad(format!(
                "sample {i} has label {l}, outside the {k} classes (-1 means no class)"
            )));
        }
        let box_offsets: Vec<i64> = o.read(BOX_OFFSETS, &[Some(n + 1)])?;
        let flat: Vec<f32> = o.read(BOXES, &[None, Some(4)])?;
        let m = flat.len() / 4;
        let box_labels: Vec<i64> = o.read(BOX_LABELS, &[Some(m)])?;
        if box_offsets.first() != Some(&0)
            || box_offsets.last() != Some(&(m as i64))
            || box_offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(o.bad("box_offsets do not index the boxes in order"));
        }
        if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
            return Err(o.bad(format!("box {} has a coordinate that is not finite", i / 4)));
        }
        if let Some(i) = box_labels.iter().position(|&l| l < 0 || l >= k as i64) {
            return Err(o.bad(format!(
                "box {i} has label {}, outside the {k} classes",
                box_labels[i]
            )));
        }
        let boxes: Vec<[f32; 4]> = flat
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();

        let layout = if format_version == 1 {
            match &storage {
                Storage::Raw => {
                    let ds = o.dataset(
                        IMAGES,
                        &[
                            Some(n),
                            Some(image_shape[0]),
                            Some(image_shape[1]),
                            Some(channels),
                        ],
                        1,
                    )?;
                    let sample_bytes = image_shape.iter().product::<usize>();
                    let offset = o.contiguous_bytes(&ds, IMAGES, (n * sample_bytes) as u64)?;
                    Layout::Fixed {
                        offset,
                        sample_bytes,
                    }
                }
                Storage::Encoded { .. } => {
                    let ds = o.dataset(ENCODED, &[Some(n)], 1)?;
                    if ds.filename() != h5.filename() {
                        return Err(o.bad("/encoded is a link into another file"));
                    }
                    Layout::VarLen(ds)
                }
            }
        } else if storage == Storage::Raw && image_shape[0] > 0 {
            let ds = o.dataset(
                IMAGES,
                &[
                    Some(n),
                    Some(image_shape[0]),
                    Some(image_shape[1]),
                    Some(channels),
                ],
                1,
            )?;
            let sample_bytes = image_shape.iter().product::<usize>();
            let offset = o.contiguous_bytes(&ds, IMAGES, (n * sample_bytes) as u64)?;
            Layout::Fixed {
                offset,
                sample_bytes,
            }
        } else {
            let offsets: Vec<i64> = o.read(OFFSETS, &[Some(n + 1)])?;
            let data = o.dataset(DATA, &[None], 1)?;
            let total = data.shape()[0] as u64;
            if offsets.first() != Some(&0)
                || offsets.last() != Some(&(total as i64))
                || offsets.windows(2).any(|w| w[0] > w[1])
            {
                return Err(o.bad(format!(
                    "/offsets do not index the {total} bytes of /data in order"
                )));
            }
            let offset = o.contiguous_bytes(&data, DATA, total)?;
            let shapes = if image_shape[0] == 0 {
                let flat: Vec<i64> = o.read(SHAPES, &[Some(n), Some(3)])?;
                let mut shapes = Vec::with_capacity(n);
                for (i, s) in flat.chunks_exact(3).enumerate() {
                    let ok = s[0] > 0
                        && s[1] > 0
                        && s[0] <= 1 << 20
                        && s[1] <= 1 << 20
                        && s[2] == channels as i64;
                    let bytes = (s[0].max(0) as u64) * (s[1].max(0) as u64) * channels as u64;
                    let stored = (offsets[i + 1] - offsets[i]) as u64;
                    if !ok || (storage == Storage::Raw && bytes != stored) {
                        return Err(o.bad(format!(
                            "sample {i} has shape {s:?}, which does not fit its {stored} stored bytes"
                        )));
                    }
                    shapes.push([s[0] as u32, s[1] as u32, s[2] as u32]);
                }
                Some(shapes)
            } else {
                None
            };
            Layout::Table {
                offset,
                offsets: offsets.into_iter().map(|v| v as u64).collect(),
                shapes,
            }
        };

        let info = StoreInfo {
            format_version,
            num_samples: n,
            image_shape,
            storage,
            attrs,
            class_counts: class_counts.into_iter().map(|c| c.max(0) as u64).collect(),
            sums,
            created_by,
        };
        Ok(StoreReader {
            path: path.to_path_buf(),
            h5,
            raw,
            identity,
            info,
            layout,
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

    /// Bytes of one raw sample (`H × W × C`) when every sample has one
    /// shape, else 0.
    pub fn sample_bytes(&self) -> usize {
        self.info.image_shape.iter().product()
    }

    /// `[height, width, channels]` of the stored sample `index`.
    pub fn sample_shape(&self, index: usize) -> [usize; 3] {
        match &self.layout {
            Layout::Table {
                shapes: Some(s), ..
            } => s[index].map(|v| v as usize),
            _ => self.info.image_shape,
        }
    }

    /// Byte address and length of sample `index` in the file, for readers
    /// of the file that do not go through this type (`None` for format 1
    /// encoded files, whose rows libhdf5 places).
    pub fn sample_range(&self, index: usize) -> Option<(u64, u64)> {
        match &self.layout {
            Layout::Fixed {
                offset,
                sample_bytes,
            } => Some((offset + (index * sample_bytes) as u64, *sample_bytes as u64)),
            Layout::Table {
                offset, offsets, ..
            } => Some((offset + offsets[index], offsets[index + 1] - offsets[index])),
            Layout::VarLen(_) => None,
        }
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

    /// Fails if the file on disk is no longer the one opened (rewritten in
    /// place: its samples would not match the labels read at open). One
    /// `fstat`.
    pub fn check_unchanged(&self) -> Result<(), Error> {
        let now = Identity::of(&self.raw).map_err(|e| Error::io(&self.path, e))?;
        if now != self.identity {
            let reason = if now.len != self.identity.len {
                format!("size {} → {} bytes", self.identity.len, now.len)
            } else {
                "modification time changed".to_string()
            };
            return Err(Error::Changed {
                path: self.path.clone(),
                reason,
            });
        }
        Ok(())
    }

    fn pread(&self, index: usize, out: &mut [u8], offset: u64) -> Result<(), Error> {
        self.raw.read_exact_at(out, offset).map_err(|e| {
            Error::io(
                &self.path,
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "reading sample {index} at byte offset {offset}: {}",
                        stokehold_core::fsutil::io_message(&e)
                    ),
                ),
            )
        })?;
        self.check_unchanged()
    }

    /// Reads raw sample `index` into `out` (`sample_bytes()` long, or the
    /// sample's own `H × W × C`) with one `pread`: no libhdf5 call, safe
    /// from any number of threads.
    pub fn read_raw(&self, index: usize, out: &mut [u8]) -> Result<(), Error> {
        self.check(index)?;
        if self.info.storage != Storage::Raw {
            return Err(Error::Format {
                path: self.path.clone(),
                reason: "the file holds encoded images, not raw".into(),
            });
        }
        let (offset, len) = self
            .sample_range(index)
            .expect("raw samples have an address");
        if out.len() as u64 != len {
            return Err(Error::BadSample {
                index,
                reason: format!("buffer of {} bytes, the sample has {len}", out.len()),
            });
        }
        self.pread(index, out, offset)
    }

    /// The stored bytes of sample `index` (an encoded image, or raw pixels)
    /// into `out`, which is cleared first. One `pread` for format 2; format
    /// 1 encoded rows are read through libhdf5, under its lock.
    pub fn read_bytes(&self, index: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        self.check(index)?;
        out.clear();
        match &self.layout {
            Layout::VarLen(ds) => {
                let one = ds
                    .read_slice_1d::<VarLenArray<u8>, _>(s![index..index + 1])
                    .at(&self.path)?;
                out.extend_from_slice(one[0].as_slice());
                self.check_unchanged()
            }
            _ => {
                let (offset, len) = self.sample_range(index).expect("an address");
                out.resize(len as usize, 0);
                self.pread(index, out, offset)
            }
        }
    }

    /// [`StoreReader::read_bytes`] into a new vector.
    pub fn read_encoded(&self, index: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.read_bytes(index, &mut out)?;
        Ok(out)
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

    /// Position of every sample in the manifest it was packed from (read
    /// through libhdf5; checked to hold one value per sample).
    pub fn read_source_index(&self) -> Result<Vec<i64>, Error> {
        let ds = self.h5.dataset(SOURCE_INDEX).at(&self.path)?;
        if ds.shape() != [self.len()] {
            return Err(Error::Format {
                path: self.path.clone(),
                reason: format!("/source_index does not hold {} values", self.len()),
            });
        }
        ds.read_raw::<i64>().at(&self.path)
    }

    /// Source path of sample `index` (read through libhdf5).
    pub fn source_path(&self, index: usize) -> Result<String, Error> {
        self.check(index)?;
        let ds = self.h5.dataset(PATHS).at(&self.path)?;
        let one = ds
            .read_slice_1d::<VarLenUnicode, _>(s![index..index + 1])
            .at(&self.path)?;
        Ok(String::from_utf8_lossy(one[0].as_bytes()).into_owned())
    }
}
