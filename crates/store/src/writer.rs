//! Writing a packed file, sample by sample, to a temporary file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hdf5::types::{VarLenArray, VarLenUnicode};
use hdf5::{Dataset, File};
use ndarray::{s, ArrayView1, ArrayView3};
use tempfile::TempPath;

use crate::error::{Error, Hdf5Context};
use crate::format::*;

/// Shape and storage of a file to write.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// `[height, width, channels]` of every stored image.
    pub image_shape: [usize; 3],
    /// Raw pixels or encoded images.
    pub storage: Storage,
    /// The most samples that will be pushed (the manifest's length).
    pub capacity: usize,
}

/// One sample to append.
#[derive(Debug, Clone, Copy)]
pub struct PackedSample<'a> {
    /// Raw pixels (`H × W × C` bytes) or the encoded image.
    pub data: &'a [u8],
    /// Class index; `None` is stored as -1.
    pub label: Option<u32>,
    /// Boxes in stored-image pixels.
    pub boxes: &'a [[f32; 4]],
    /// Class index of each box.
    pub box_labels: &'a [u32],
    /// Source path.
    pub path: &'a str,
    /// `[height, width]` of the source image as displayed.
    pub orig_size: [u32; 2],
    /// Position of the sample in the manifest it was packed from.
    pub source_index: usize,
}

/// Encoded samples are appended in batches of this many, so that the
/// resizable `/encoded` dataset grows 256 rows at a time, not one.
const ENCODED_BATCH: usize = 256;
/// Rows copied at a time when compacting.
const COMPACT_ROWS: usize = 64;

/// Writes a packed file to a temporary file beside its destination. Call
/// [`StoreWriter::finish`], then persist the returned path; dropping the
/// writer (or the path) removes the temporary file.
pub struct StoreWriter {
    config: WriterConfig,
    dir: PathBuf,
    tmp: TempPath,
    file: File,
    data: Dataset,
    written: usize,
    pending: Vec<VarLenArray<u8>>,
    labels: Vec<i64>,
    boxes: Vec<f32>,
    box_labels: Vec<i64>,
    box_offsets: Vec<i64>,
    paths: Vec<VarLenUnicode>,
    orig_sizes: Vec<i64>,
    source_index: Vec<i64>,
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
        .map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    Ok(tmp.into_temp_path())
}

fn create_data(
    file: &File,
    path: &Path,
    config: &WriterConfig,
    rows: usize,
) -> Result<Dataset, Error> {
    let [h, w, c] = config.image_shape;
    match config.storage {
        // Contiguous and allocated at creation: the reader finds sample i at
        // offset + i × H×W×C and reads it with pread. No fill: every row is
        // written exactly once.
        Storage::Raw => file
            .new_dataset::<u8>()
            .alloc_time(Some(hdf5::dataset::AllocTime::Early))
            .fill_time(hdf5::dataset::FillTime::Never)
            .shape([rows, h, w, c])
            .create(IMAGES)
            .at(path),
        Storage::Encoded { .. } => file
            .new_dataset::<VarLenArray<u8>>()
            .chunk(ENCODED_BATCH)
            .shape(0..)
            .create(ENCODED)
            .at(path),
    }
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
        let data = create_data(&file, &tmp, &config, config.capacity)?;
        Ok(StoreWriter {
            dir,
            file,
            data,
            written: 0,
            pending: Vec::new(),
            labels: Vec::with_capacity(config.capacity),
            boxes: Vec::new(),
            box_labels: Vec::new(),
            box_offsets: vec![0],
            paths: Vec::with_capacity(config.capacity),
            orig_sizes: Vec::with_capacity(config.capacity * 2),
            source_index: Vec::with_capacity(config.capacity),
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

    /// Appends one sample.
    pub fn push(&mut self, sample: &PackedSample<'_>) -> Result<(), Error> {
        let index = self.written;
        let bad = |reason: String| Error::BadSample { index, reason };
        if sample.boxes.len() != sample.box_labels.len() {
            return Err(bad("boxes and box labels differ in number".into()));
        }
        match self.config.storage {
            Storage::Raw => {
                if index >= self.config.capacity {
                    return Err(bad(format!(
                        "more samples than the capacity of {}",
                        self.config.capacity
                    )));
                }
                let [h, w, c] = self.config.image_shape;
                let view = ArrayView3::from_shape((h, w, c), sample.data).map_err(|_| {
                    bad(format!(
                        "{} bytes of pixels, expected {h}×{w}×{c}",
                        sample.data.len()
                    ))
                })?;
                self.data
                    .write_slice(view, s![index, .., .., ..])
                    .at(&self.tmp)?;
            }
            Storage::Encoded { .. } => {
                self.pending.push(VarLenArray::from_slice(sample.data));
                if self.pending.len() >= ENCODED_BATCH {
                    self.flush_encoded()?;
                }
            }
        }
        let path = VarLenUnicode::from_str(sample.path)
            .map_err(|e| bad(format!("path {:?}: {e}", sample.path)))?;
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

    fn flush_encoded(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let start = self.data.shape()[0];
        let end = start + self.pending.len();
        self.data.resize(end).at(&self.tmp)?;
        self.data
            .write_slice(ArrayView1::from(&self.pending[..]), s![start..end])
            .at(&self.tmp)?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the metadata and attributes, closes and syncs the file, and
    /// returns its temporary path: persist it to the destination (or drop
    /// it to remove it).
    pub fn finish(mut self, attrs: &Attrs) -> Result<TempPath, Error> {
        self.flush_encoded()?;
        if self.config.storage == Storage::Raw && self.written < self.config.capacity {
            self.compact()?;
        }
        let path = self.tmp.to_path_buf();
        self.write_metadata(attrs).at(&path)?;
        let StoreWriter {
            file, data, tmp, ..
        } = self;
        drop(data);
        file.close().at(&path)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
        Ok(tmp)
    }

    /// Some samples were skipped: a contiguous dataset cannot shrink, so
    /// copy the rows written into a new file of the right size.
    fn compact(&mut self) -> Result<(), Error> {
        let tmp = temp_beside(&self.dir)?;
        let file = File::create(&tmp).at(&tmp)?;
        let data = create_data(&file, &tmp, &self.config, self.written)?;
        let mut start = 0;
        while start < self.written {
            let end = (start + COMPACT_ROWS).min(self.written);
            let rows: ndarray::Array4<u8> = self
                .data
                .read_slice(s![start..end, .., .., ..])
                .at(&self.tmp)?;
            data.write_slice(&rows, s![start..end, .., .., ..])
                .at(&tmp)?;
            start = end;
        }
        let old_file = std::mem::replace(&mut self.file, file);
        let old_data = std::mem::replace(&mut self.data, data);
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

        let text = |name: &str, value: &str| -> hdf5::Result<()> {
            let v = VarLenUnicode::from_str(value).map_err(|e| hdf5::Error::from(e.to_string()))?;
            f.new_attr::<VarLenUnicode>().create(name)?.write_scalar(&v)
        };
        let [h, w, c] = self.config.image_shape;
        text("format", FORMAT)?;
        f.new_attr::<u32>()
            .create("format_version")?
            .write_scalar(&FORMAT_VERSION)?;
        f.new_attr::<i64>()
            .create("num_samples")?
            .write_scalar(&(n as i64))?;
        f.new_attr_builder()
            .with_data(&[h as i64, w as i64, c as i64])
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
        f.new_attr_builder().with_data(&attrs.mean).create("mean")?;
        f.new_attr_builder().with_data(&attrs.std).create("std")?;
        let classes: Vec<VarLenUnicode> = attrs
            .classes
            .iter()
            .map(|c| VarLenUnicode::from_str(c).map_err(|e| hdf5::Error::from(e.to_string())))
            .collect::<hdf5::Result<_>>()?;
        f.new_attr_builder().with_data(&classes).create("classes")?;
        let mut counts = vec![0i64; attrs.classes.len()];
        for &l in &self.labels {
            if l >= 0 && (l as usize) < counts.len() {
                counts[l as usize] += 1;
            }
        }
        f.new_attr_builder()
            .with_data(&counts)
            .create("class_counts")?;
        text("source", &attrs.source)?;
        text(
            "created_by",
            concat!("stokehold ", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(())
    }
}
