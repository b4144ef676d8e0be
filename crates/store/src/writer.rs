//! Writing a packed file (format version 2), sample by sample, to a
//! temporary file.

use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File};
use ndarray::{s, ArrayView1, ArrayView3};
use tempfile::TempPath;

use crate::error::{Error, Hdf5Context};
use crate::format::*;

/// Shape and storage of a file to write.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// `[height, width, channels]` of every stored image; a height and
    /// width of 0 mean that each sample has its own (given with it).
    pub image_shape: [usize; 3],
    /// Raw pixels or encoded images.
    pub storage: Storage,
    /// The most samples that will be pushed (the manifest's length).
    pub capacity: usize,
}

impl WriterConfig {
    /// Whether every sample has the same `image_shape`.
    pub fn fixed_shape(&self) -> bool {
        self.image_shape[0] > 0 && self.image_shape[1] > 0
    }
}

/// One sample to append.
#[derive(Debug, Clone, Copy)]
pub struct PackedSample<'a> {
    /// Raw pixels (`H × W × C` bytes) or the encoded image.
    pub data: &'a [u8],
    /// `[height, width, channels]` of the stored image (checked against a
    /// fixed `image_shape`).
    pub shape: [u32; 3],
    /// Class index; `None` is stored as -1.
    pub label: Option<u32>,
    /// Boxes in stored-image pixels.
    pub boxes: &'a [[f32; 4]],
    /// Class index of each box.
    pub box_labels: &'a [u32],
    /// Source path (stored as text; a name that is not UTF-8 is stored
    /// with U+FFFD in place of its invalid bytes).
    pub path: &'a Path,
    /// `[height, width]` of the source image as displayed.
    pub orig_size: [u32; 2],
    /// Position of the sample in the manifest it was packed from.
    pub source_index: usize,
}

/// Rows copied at a time when compacting.
const COMPACT_ROWS: usize = 64;
/// Bytes copied at a time from the spool into `/data`.
const COPY_BYTES: usize = 8 << 20;

/// Writes a packed file to a temporary file beside its destination. Call
/// [`StoreWriter::finish`], then persist the returned path; dropping the
/// writer (or the path) removes the temporary file.
pub struct StoreWriter {
    config: WriterConfig,
    dir: PathBuf,
    tmp: TempPath,
    file: File,
    /// `/images` for fixed-shape raw storage.
    images: Option<Dataset>,
    /// Everything else is spooled here, in order, and copied into one
    /// contiguous `/data` at the end (its size is known only then).
    spool: Option<BufWriter<std::fs::File>>,
    offsets: Vec<i64>,
    shapes: Vec<i64>,
    written: usize,
    labels: Vec<i64>,
    boxes: Vec<f32>,
    box_labels: Vec<i64>,
    box_offsets: Vec<i64>,
    paths: Vec<VarLenUnicode>,
    orig_sizes: Vec<i64>,
    source_index: Vec<i64>,
    sums: PixelSums,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("tmp", &self.tmp)
            .field("written", &self.written)
            .finish()
    }
}

fn temp_beside(dir: &Path) -> Result<TempPath, Error> {
    let tmp = tempfile::Builder::new()
        .prefix(".stokehold-")
        .suffix(".h5.tmp")
        // Readable like any file the user creates (0666 less the umask),
        // not the 0600 of a private temporary file: rename keeps the mode.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    Ok(tmp.into_temp_path())
}

/// A contiguous `uint8` dataset allocated at creation: the reader finds
/// every byte at a fixed offset and reads it with `pread`. No fill: every
/// byte is written exactly once.
fn create_contiguous(
    file: &File,
    path: &Path,
    name: &str,
    shape: &[usize],
) -> Result<Dataset, Error> {
    file.new_dataset::<u8>()
        .alloc_time(Some(hdf5::dataset::AllocTime::Early))
        .fill_time(hdf5::dataset::FillTime::Never)
        .shape(shape)
        .create(name)
        .at(path)
}

/// Checks what HDF5 cannot store in a class name; done before any sample is
/// decoded so that a long pack does not fail at its very end.
pub fn check_class_names(classes: &[String]) -> Result<(), String> {
    for (i, c) in classes.iter().enumerate() {
        if c.contains('\0') {
            return Err(format!(
                "class {i} ({:?}) contains a NUL character, which HDF5 strings cannot hold",
                c.replace('\0', "\\0")
            ));
        }
    }
    Ok(())
}

impl StoreWriter {
    /// Starts a file that will end up at `dest` (nothing is written there
    /// until the caller persists the finished file).
    pub fn create(dest: &Path, config: WriterConfig) -> Result<StoreWriter, Error> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = temp_beside(&dir)?;
        let file = File::create(&tmp).at(&tmp)?;
        let [h, w, c] = config.image_shape;
        let fixed_raw = config.storage == Storage::Raw && config.fixed_shape();
        let (images, spool) = if fixed_raw {
            (
                Some(create_contiguous(
                    &file,
                    &tmp,
                    IMAGES,
                    &[config.capacity, h, w, c],
                )?),
                None,
            )
        } else {
            let spool = tempfile::tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
            (None, Some(BufWriter::with_capacity(1 << 20, spool)))
        };
        Ok(StoreWriter {
            dir,
            file,
            images,
            spool,
            offsets: vec![0],
            shapes: Vec::new(),
            written: 0,
            labels: Vec::with_capacity(config.capacity),
            boxes: Vec::new(),
            box_labels: Vec::new(),
            box_offsets: vec![0],
            paths: Vec::with_capacity(config.capacity),
            orig_sizes: Vec::with_capacity(config.capacity * 2),
            source_index: Vec::with_capacity(config.capacity),
            sums: PixelSums::new(c),
            tmp,
            config,
        })
    }

    /// Samples pushed so far.
    pub fn len(&self) -> usize {
        self.written
    }

    /// Whether no sample was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Adds the pixels of a stored image to the file's exact statistics
    /// (for encoded storage, the pixels before encoding).
    pub fn add_pixels(&mut self, pixels: &[u8]) {
        self.sums.add_pixels(pixels);
    }

    /// Appends one sample.
    pub fn push(&mut self, sample: &PackedSample<'_>) -> Result<(), Error> {
        let index = self.written;
        let bad = |reason: String| Error::BadSample { index, reason };
        if sample.boxes.len() != sample.box_labels.len() {
            return Err(bad("boxes and box labels differ in number".into()));
        }
        let [h, w, c] = self.config.image_shape;
        let [sh, sw, sc] = sample.shape.map(|v| v as usize);
        if sc != c || (self.config.fixed_shape() && (sh, sw) != (h, w)) {
            return Err(bad(format!(
                "shape {sh}×{sw}×{sc} does not fit the file's {h}×{w}×{c}"
            )));
        }
        if let Some(images) = &self.images {
            if index >= self.config.capacity {
                return Err(bad(format!(
                    "more samples than the capacity of {}",
                    self.config.capacity
                )));
            }
            let view = ArrayView3::from_shape((h, w, c), sample.data).map_err(|_| {
                bad(format!(
                    "{} bytes of pixels, expected {h}×{w}×{c}",
                    sample.data.len()
                ))
            })?;
            images
                .write_slice(view, s![index, .., .., ..])
                .at(&self.tmp)?;
        } else {
            if self.config.storage == Storage::Raw && sample.data.len() != sh * sw * sc {
                return Err(bad(format!(
                    "{} bytes of pixels, expected {sh}×{sw}×{sc}",
                    sample.data.len()
                )));
            }
            let spool = self.spool.as_mut().expect("spool when not fixed raw");
            spool
                .write_all(sample.data)
                .map_err(|e| Error::io(&self.dir, e))?;
            let end = self.offsets.last().copied().unwrap_or(0) + sample.data.len() as i64;
            self.offsets.push(end);
            self.shapes.extend(sample.shape.map(i64::from));
        }
        let text = sample.path.to_string_lossy();
        let path = VarLenUnicode::from_str(&text.replace('\0', "\u{FFFD}"))
            .map_err(|e| bad(format!("path {text:?}: {e}")))?;
        self.labels.push(sample.label.map_or(-1, i64::from));
        for b in sample.boxes {
            self.boxes.extend_from_slice(b);
        }
        self.box_labels
            .extend(sample.box_labels.iter().map(|&l| i64::from(l)));
        self.box_offsets.push(self.box_labels.len() as i64);
        self.paths.push(path);
        self.orig_sizes.extend(sample.orig_size.map(i64::from));
        self.source_index.push(sample.source_index as i64);
        self.written += 1;
        Ok(())
    }

    /// Writes the data and metadata, closes and syncs the file, and returns
    /// its temporary path and the exact pixel sums: persist the path to the
    /// destination (or drop it to remove the file). `attrs.mean`/`std`
    /// are taken from the sums when empty.
    pub fn finish(mut self, attrs: &Attrs) -> Result<(TempPath, PixelSums), Error> {
        check_class_names(&attrs.classes).map_err(|reason| Error::Format {
            path: self.tmp.to_path_buf(),
            reason,
        })?;
        if self.images.is_some() && self.written < self.config.capacity {
            self.compact()?;
        }
        if let Some(spool) = self.spool.take() {
            self.copy_spool(spool)?;
        }
        let path = self.tmp.to_path_buf();
        self.write_metadata(attrs).at(&path)?;
        let StoreWriter {
            file,
            images,
            tmp,
            sums,
            ..
        } = self;
        drop(images);
        file.close().at(&path)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        Ok((tmp, sums))
    }

    /// Copies the spooled bytes into one contiguous `/data`.
    fn copy_spool(&mut self, spool: BufWriter<std::fs::File>) -> Result<(), Error> {
        let mut spool = spool
            .into_inner()
            .map_err(|e| Error::io(&self.dir, e.into_error()))?;
        let total = *self.offsets.last().unwrap_or(&0) as usize;
        let data = create_contiguous(&self.file, &self.tmp, DATA, &[total])?;
        spool.rewind().map_err(|e| Error::io(&self.dir, e))?;
        let mut buf = vec![0u8; COPY_BYTES.min(total.max(1))];
        let mut at = 0;
        while at < total {
            let n = (total - at).min(buf.len());
            spool
                .read_exact(&mut buf[..n])
                .map_err(|e| Error::io(&self.dir, e))?;
            data.write_slice(ArrayView1::from(&buf[..n]), s![at..at + n])
                .at(&self.tmp)?;
            at += n;
        }
        Ok(())
    }

    /// Some samples were skipped: a contiguous dataset cannot shrink, so
    /// copy the rows written into a new file of the right size.
    fn compact(&mut self) -> Result<(), Error> {
        let tmp = temp_beside(&self.dir)?;
        let file = File::create(&tmp).at(&tmp)?;
        let [h, w, c] = self.config.image_shape;
        let data = create_contiguous(&file, &tmp, IMAGES, &[self.written, h, w, c])?;
        let old = self.images.as_ref().expect("compact is for /images");
        let mut start = 0;
        while start < self.written {
            let end = (start + COMPACT_ROWS).min(self.written);
            let rows: ndarray::Array4<u8> =
                old.read_slice(s![start..end, .., .., ..]).at(&self.tmp)?;
            data.write_slice(&rows, s![start..end, .., .., ..])
                .at(&tmp)?;
            start = end;
        }
        let old_file = std::mem::replace(&mut self.file, file);
        let old_data = self.images.replace(data);
        drop(old_data);
        old_file.close().at(&self.tmp)?;
        // Dropping the old TempPath removes the oversized file.
        self.tmp = tmp;
        Ok(())
    }

    fn write_metadata(&self, attrs: &Attrs) -> hdf5::Result<()> {
        let f = &self.file;
        let n = self.written;
        let m = self.box_labels.len();
        let [h, w, c] = self.config.image_shape;
        if self.images.is_none() {
            f.new_dataset_builder()
                .with_data(&self.offsets)
                .create(OFFSETS)?;
            if !self.config.fixed_shape() {
                let shapes = ndarray::ArrayView2::from_shape((n, 3), &self.shapes[..])
                    .expect("3 per sample");
                f.new_dataset_builder().with_data(&shapes).create(SHAPES)?;
            }
        }
        f.new_dataset_builder()
            .with_data(&self.labels)
            .create(LABELS)?;
        let boxes = ndarray::ArrayView2::from_shape((m, 4), &self.boxes[..]).expect("4 per box");
        f.new_dataset_builder().with_data(&boxes).create(BOXES)?;
        f.new_dataset_builder()
            .with_data(&self.box_labels)
            .create(BOX_LABELS)?;
        f.new_dataset_builder()
            .with_data(&self.box_offsets)
            .create(BOX_OFFSETS)?;
        f.new_dataset_builder()
            .with_data(&self.paths)
            .create(PATHS)?;
        let sizes =
            ndarray::ArrayView2::from_shape((n, 2), &self.orig_sizes[..]).expect("2 per sample");
        f.new_dataset_builder()
            .with_data(&sizes)
            .create(ORIG_SIZES)?;
        f.new_dataset_builder()
            .with_data(&self.source_index)
            .create(SOURCE_INDEX)?;
        let classes: Vec<VarLenUnicode> = attrs
            .classes
            .iter()
            .map(|c| VarLenUnicode::from_str(c).map_err(|e| hdf5::Error::from(e.to_string())))
            .collect::<hdf5::Result<_>>()?;
        f.new_dataset_builder()
            .with_data(&classes)
            .create(CLASSES)?;
        let mut counts = vec![0i64; attrs.classes.len()];
        for &l in &self.labels {
            if l >= 0 && (l as usize) < counts.len() {
                counts[l as usize] += 1;
            }
        }
        f.new_dataset_builder()
            .with_data(&counts)
            .create(CLASS_COUNTS)?;

        let text = |name: &str, value: &str| -> hdf5::Result<()> {
            let v = VarLenUnicode::from_str(&value.replace('\0', "\u{FFFD}"))
                .map_err(|e| hdf5::Error::from(e.to_string()))?;
            f.new_attr::<VarLenUnicode>().create(name)?.write_scalar(&v)
        };
        text("format", FORMAT)?;
        f.new_attr::<u32>()
            .create("format_version")?
            .write_scalar(&FORMAT_VERSION)?;
        f.new_attr::<i64>()
            .create("num_samples")?
            .write_scalar(&(n as i64))?;
        let shape = if self.config.fixed_shape() {
            [h as i64, w as i64, c as i64]
        } else {
            [-1, -1, c as i64]
        };
        f.new_attr_builder()
            .with_data(&shape)
            .create("image_shape")?;
        text("storage", self.config.storage.kind())?;
        if let Storage::Encoded { codec } = &self.config.storage {
            text("codec", codec)?;
        }
        if let Some(q) = attrs.quality {
            f.new_attr::<i64>()
                .create("quality")?
                .write_scalar(&i64::from(q))?;
        }
        text("resize", &attrs.resize)?;
        text("filter", &attrs.filter)?;
        f.new_attr::<i64>()
            .create("fill")?
            .write_scalar(&i64::from(attrs.fill))?;
        let (mean, std) = if attrs.mean.is_empty() {
            self.sums.mean_std()
        } else {
            (attrs.mean.clone(), attrs.std.clone())
        };
        f.new_attr_builder().with_data(&mean).create("mean")?;
        f.new_attr_builder().with_data(&std).create("std")?;
        f.new_attr::<u64>()
            .create("pixel_count")?
            .write_scalar(&self.sums.count)?;
        f.new_attr_builder()
            .with_data(&self.sums.sum)
            .create("pixel_sum")?;
        f.new_attr_builder()
            .with_data(&self.sums.sum_sq)
            .create("pixel_sum_sq")?;
        text("source", &attrs.source)?;
        text(
            "created_by",
            concat!("stokehold ", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(())
    }
}
