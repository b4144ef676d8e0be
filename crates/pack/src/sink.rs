//! Where packed samples go: one file, or a directory of shards.

use std::path::{Path, PathBuf};

use stokehold_core::{Control, Sample};
use stokehold_store::{
    Attrs, PackedSample, PixelSums, ShardEntry, ShardSpill, Storage, StoreReader, StoreWriter,
    WriterConfig,
};

use crate::options::ShardOptions;
use crate::process::Packed;
use crate::Error;

/// What a sink wrote.
pub(crate) struct Written {
    pub sums: PixelSums,
    pub file_bytes: u64,
    /// The shards' index entries (none for one file).
    pub shards: Option<ShardSpill>,
}

/// Takes samples in order and writes them.
pub(crate) trait Sink {
    fn push(&mut self, sample: &Sample, source_index: usize, packed: &Packed) -> Result<(), Error>;
    /// Writes what remains; a single file is renamed into place only if
    /// `control` was not cancelled by then (a signal that arrives while
    /// the file is flushed leaves nothing under the final name).
    fn finish(self: Box<Self>, attrs: &Attrs, control: &Control) -> Result<Written, Error>;
}

fn store_sample<'a>(
    sample: &'a Sample,
    source_index: usize,
    packed: &'a Packed,
) -> PackedSample<'a> {
    PackedSample {
        data: &packed.data,
        shape: packed.shape,
        label: sample.label,
        boxes: &packed.boxes,
        box_labels: &packed.box_labels,
        path: &sample.path,
        orig_size: packed.orig_size,
        source_index,
    }
}

/// One packed file, renamed into place when finished.
pub(crate) struct FileSink {
    pub writer: StoreWriter,
    pub dest: PathBuf,
    pub force: bool,
}

impl Sink for FileSink {
    fn push(&mut self, sample: &Sample, source_index: usize, packed: &Packed) -> Result<(), Error> {
        self.writer
            .push(&store_sample(sample, source_index, packed))?;
        self.writer
            .add_pixels(packed.pixels.as_deref().unwrap_or(&packed.data));
        Ok(())
    }

    fn finish(self: Box<Self>, attrs: &Attrs, control: &Control) -> Result<Written, Error> {
        let dest = self.dest;
        let (finished, sums) = self.writer.finish(attrs)?;
        if control.is_cancelled() {
            // Dropping the temporary path removes the file.
            return Err(Error::Cancelled);
        }
        let persisted = if self.force {
            finished.persist(&dest)
        } else {
            finished.persist_noclobber(&dest)
        };
        persisted.map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists { path: dest.clone() }
            } else {
                Error::Store(stokehold_store::Error::Io {
                    path: dest.clone(),
                    error: e.error,
                })
            }
        })?;
        Ok(Written {
            sums,
            file_bytes: std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0),
            shards: None,
        })
    }
}

/// Where a sharded pack's finished files also go (object storage): each
/// shard as soon as it is closed, the index or part record last.
pub trait Upload: Sync {
    /// Copies the finished local file `path` to `name` (its path relative
    /// to the dataset); the pack removes a shard's local file afterwards.
    fn upload(&self, path: &Path, name: &str) -> Result<(), stokehold_store::Error>;
}

/// Shard files `shard-KKKKK.h5` in `dir`, each finished (written to a
/// temporary file and renamed) as soon as it is full.
pub(crate) struct ShardSink<'a> {
    /// Where the shard files go.
    pub dir: PathBuf,
    /// Their names in the dataset's index are `prefix` + file name.
    pub prefix: String,
    pub config: WriterConfig,
    pub limits: ShardOptions,
    /// Samples per shard for raw storage (a shard's capacity).
    pub per_shard: usize,
    /// Samples this sink will receive at most.
    pub remaining: usize,
    pub current: Option<StoreWriter>,
    pub current_bytes: u64,
    pub attrs: Attrs,
    /// The index entries of the shards closed so far, kept on disk.
    pub entries: ShardSpill,
    pub written: usize,
    /// Uploads each closed shard (then removed here).
    pub upload: Option<&'a dyn Upload>,
}

impl ShardSink<'_> {
    /// Samples of raw storage in one shard: `samples`, or as many whole
    /// samples as `bytes` holds (at least one), or everything.
    pub fn per_shard(
        limits: &ShardOptions,
        sample_bytes: usize,
        storage: &Storage,
        total: usize,
    ) -> usize {
        let by_bytes = match (limits.bytes, storage) {
            (Some(b), Storage::Raw) => Some(((b / sample_bytes.max(1) as u64) as usize).max(1)),
            _ => None,
        };
        match (limits.samples, by_bytes) {
            (Some(s), Some(b)) => s.min(b),
            (Some(s), None) => s,
            (None, Some(b)) => b,
            (None, None) => total.max(1),
        }
    }

    fn shard_path(&self, k: usize) -> (PathBuf, String) {
        let name = format!("shard-{k:05}.h5");
        (self.dir.join(&name), format!("{}{name}", self.prefix))
    }

    fn close_current(&mut self) -> Result<(), Error> {
        let Some(writer) = self.current.take() else {
            return Ok(());
        };
        let k = self.entries.len();
        let (path, name) = self.shard_path(k);
        let (tmp, sums) = writer.finish(&self.attrs)?;
        tmp.persist(&path).map_err(|e| {
            Error::Store(stokehold_store::Error::Io {
                path: path.clone(),
                error: e.error,
            })
        })?;
        let reader = StoreReader::open(&path)?;
        let entry = ShardEntry::of_file(&reader, name.clone(), self.written - reader.len())?;
        drop(reader);
        debug_assert_eq!(entry.sums(), sums);
        self.entries.push(entry)?;
        if let Some(upload) = self.upload {
            upload.upload(&path, &name)?;
            std::fs::remove_file(&path).map_err(|e| {
                Error::Store(stokehold_store::Error::Io {
                    path: path.clone(),
                    error: e,
                })
            })?;
        }
        self.current_bytes = 0;
        Ok(())
    }
}

impl Sink for ShardSink<'_> {
    fn push(&mut self, sample: &Sample, source_index: usize, packed: &Packed) -> Result<(), Error> {
        if self.current.is_none() {
            let k = self.entries.len();
            let capacity = self.per_shard.min(self.remaining).max(1);
            let config = WriterConfig {
                capacity,
                ..self.config.clone()
            };
            let (path, _) = self.shard_path(k);
            self.current = Some(StoreWriter::create(&path, config)?);
        }
        let writer = self.current.as_mut().expect("opened above");
        writer.push(&store_sample(sample, source_index, packed))?;
        writer.add_pixels(packed.pixels.as_deref().unwrap_or(&packed.data));
        self.current_bytes += packed.data.len() as u64;
        self.written += 1;
        self.remaining = self.remaining.saturating_sub(1);
        let full = writer.len() >= self.per_shard
            || self.limits.bytes.is_some_and(|b| self.current_bytes >= b);
        if full {
            self.close_current()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, attrs: &Attrs, _: &Control) -> Result<Written, Error> {
        self.attrs = attrs.clone();
        self.close_current()?;
        Ok(Written {
            sums: self.entries.sums().clone(),
            file_bytes: self.entries.file_bytes(),
            shards: Some(self.entries),
        })
    }
}

/// Removes what an earlier pack left in a dataset directory: its index,
/// shard files and part folders (nothing else).
pub(crate) fn clear_dataset_dir(dir: &Path) -> Result<(), Error> {
    let io = |e| {
        Error::Store(stokehold_store::Error::Io {
            path: dir.to_path_buf(),
            error: e,
        })
    };
    // The index first: from here on no reader takes the old shards for a dataset.
    match std::fs::remove_file(dir.join(stokehold_store::INDEX_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("shard-") && name.ends_with(".h5") {
            std::fs::remove_file(entry.path()).map_err(io)?;
        } else if name.starts_with("part-") && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

/// Whether `dir` holds a dataset (an index, shards or parts).
pub(crate) fn holds_dataset(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.filter_map(Result::ok).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name == stokehold_store::INDEX_FILE
                || (name.starts_with("shard-") && name.ends_with(".h5"))
                || name.starts_with("part-")
        })
    })
}
