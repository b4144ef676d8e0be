//! A packed dataset as the loader reads it: one packed file, or a
//! directory of shards with its index. Either way every sample is one
//! `pread` at an address known when the dataset is opened; a sharded
//! dataset is opened from its index alone, without libhdf5.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::format::{Attrs, PixelSums, Storage};
use crate::index::{DatasetIndex, INDEX_FILE};
use crate::reader::{StoreInfo, StoreReader};

/// At most this many shard files are open at once (a process's default
/// limit is 1,024 descriptors; a dataset may have thousands of shards).
const MAX_OPEN_SHARDS: usize = 256;

/// Reads byte ranges of a sharded dataset's shards from elsewhere than
/// local files (object storage).
pub trait RangeReader: Send + Sync + std::fmt::Debug {
    /// The bytes of each `(shard, range)`, in the order asked, each exactly
    /// as long as its range (`shard` is the shard's path relative to the
    /// dataset). An error names the object and what failed.
    fn read(&self, requests: &[(&str, Range<u64>)]) -> Vec<Result<Vec<u8>, Error>>;

    /// What was fetched so far: requests, bytes, retries, cache hits.
    fn counters(&self) -> [u64; 4] {
        [0; 4]
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A dataset's id, and its samples fetched ahead (bytes, or the error).
type Prefetched = (u64, HashMap<usize, Result<Vec<u8>, Error>>);

thread_local! {
    /// Per thread: the samples of the batch being made, fetched together by
    /// [`PackedDataset::prefetch`].
    static PREFETCHED: RefCell<Prefetched> =
        RefCell::new((0, HashMap::new()));
}

/// A packed file or a sharded dataset directory, with global sample indices.
#[derive(Debug)]
pub struct PackedDataset {
    location: PathBuf,
    info: StoreInfo,
    kind: Kind,
    id: u64,
}

#[derive(Debug)]
enum Kind {
    File(Box<StoreReader>),
    Shards(Box<Shards>),
}

#[derive(Debug)]
struct Shards {
    dir: PathBuf,
    /// First global sample of each shard, for a binary search.
    starts: Vec<usize>,
    shards: Vec<Shard>,
    labels: Vec<i64>,
    box_offsets: Vec<u64>,
    boxes: Vec<[f32; 4]>,
    box_labels: Vec<i64>,
    /// Open shard files (a bounded set), opened on first use.
    open: Mutex<HashMap<usize, Arc<OpenShard>>>,
    /// Where the bytes come from when the shards are not local files.
    remote: Option<Box<dyn RangeReader>>,
}

#[derive(Debug)]
struct Shard {
    /// Its path relative to the dataset.
    name: String,
    path: PathBuf,
    file_bytes: u64,
    data_offset: u64,
    /// `Some(bytes)` for raw storage of one shape, else `offsets`.
    sample_bytes: Option<u64>,
    offsets: Vec<u64>,
    shapes: Vec<[u32; 3]>,
}

#[derive(Debug)]
struct OpenShard {
    file: std::fs::File,
    len: u64,
    mtime: (i64, i64),
}

impl Shard {
    /// Byte address and length of sample `i` of the shard.
    fn address(&self, i: usize) -> (u64, u64) {
        match self.sample_bytes {
            Some(b) => (self.data_offset + i as u64 * b, b),
            None => (
                self.data_offset + self.offsets[i],
                self.offsets[i + 1] - self.offsets[i],
            ),
        }
    }
}

impl OpenShard {
    fn open(shard: &Shard) -> Result<OpenShard, Error> {
        let (file, len) = stokehold_core::fsutil::open_regular(&shard.path)
            .map_err(|e| Error::io(&shard.path, e.into()))?;
        if len != shard.file_bytes {
            return Err(Error::Format {
                path: shard.path.clone(),
                reason: format!(
                    "the shard has {len} bytes, the dataset's index says {}: it was replaced or damaged",
                    shard.file_bytes
                ),
            });
        }
        let m = file.metadata().map_err(|e| Error::io(&shard.path, e))?;
        Ok(OpenShard {
            file,
            len,
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }

    fn check(&self, path: &Path) -> Result<(), Error> {
        let m = self.file.metadata().map_err(|e| Error::io(path, e))?;
        if m.len() != self.len || (m.mtime(), m.mtime_nsec()) != self.mtime {
            return Err(Error::Changed {
                path: path.to_path_buf(),
                reason: format!("size {} → {} bytes or modification time", self.len, m.len()),
            });
        }
        Ok(())
    }
}

impl PackedDataset {
    /// Opens a packed file, or a dataset directory (or its `dataset.json`);
    /// an index larger than `max_index_bytes` is refused.
    pub fn open(path: &Path, max_index_bytes: u64) -> Result<PackedDataset, Error> {
        let index_path = if path.is_dir() {
            Some(path.join(INDEX_FILE))
        } else if path.extension().is_some_and(|e| e == "json") {
            Some(path.to_path_buf())
        } else {
            None
        };
        let Some(index_path) = index_path else {
            let reader = StoreReader::open(path)?;
            return Ok(PackedDataset {
                location: path.to_path_buf(),
                info: reader.info().clone(),
                kind: Kind::File(Box::new(reader)),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            });
        };
        if !index_path.exists() && path.is_dir() {
            let parts = std::fs::read_dir(path)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .any(|e| e.file_name().to_string_lossy().starts_with("part-"))
                })
                .unwrap_or(false);
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: if parts {
                    format!("no {INDEX_FILE}: the parts packed here are not committed yet (stokehold commit)")
                } else {
                    format!("no {INDEX_FILE}: not a packed dataset directory")
                },
            });
        }
        let index = DatasetIndex::load(&index_path, max_index_bytes)?;
        let dataset = Self::from_index(&index_path, index, None);
        // The parsed index is gone; its buffers need not stay resident.
        stokehold_core::fsutil::release_free_memory();
        Ok(dataset)
    }

    /// A sharded dataset whose index (its `dataset.json` at `location`,
    /// read and parsed elsewhere: [`DatasetIndex::parse`]) lists shards that
    /// `remote` reads.
    pub fn from_remote(
        location: &str,
        index: DatasetIndex,
        remote: Box<dyn RangeReader>,
    ) -> PackedDataset {
        let dataset = Self::from_index(Path::new(location), index, Some(remote));
        stokehold_core::fsutil::release_free_memory();
        dataset
    }

    fn from_index(
        index_path: &Path,
        index: DatasetIndex,
        remote: Option<Box<dyn RangeReader>>,
    ) -> PackedDataset {
        let dir = index_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let n = index.num_samples;
        let mut labels = Vec::with_capacity(n);
        let mut box_offsets = Vec::with_capacity(n + 1);
        box_offsets.push(0u64);
        let (mut boxes, mut box_labels) = (Vec::new(), Vec::new());
        let mut starts = Vec::with_capacity(index.shards.len());
        let mut shards = Vec::with_capacity(index.shards.len());
        for s in index.shards {
            starts.push(s.first_sample);
            labels.extend_from_slice(&s.labels);
            let base = boxes.len() as u64;
            box_offsets.extend(s.box_offsets[1..].iter().map(|o| o + base));
            boxes.extend_from_slice(&s.boxes);
            box_labels.extend_from_slice(&s.box_labels);
            shards.push(Shard {
                path: dir.join(&s.path),
                name: s.path,
                file_bytes: s.file_bytes,
                data_offset: s.data_offset,
                sample_bytes: s.sample_bytes,
                offsets: s.offsets,
                shapes: s.shapes,
            });
        }
        let spec = index.spec;
        let c = spec.image_shape[2].max(1) as usize;
        let image_shape = if spec.image_shape[0] < 0 {
            [0, 0, c]
        } else {
            [
                spec.image_shape[0] as usize,
                spec.image_shape[1] as usize,
                c,
            ]
        };
        let info = StoreInfo {
            format_version: index.shard_format_version,
            num_samples: n,
            image_shape,
            storage: if spec.storage == "raw" {
                Storage::Raw
            } else {
                Storage::Encoded {
                    codec: spec.codec.clone().unwrap_or_default(),
                }
            },
            attrs: Attrs {
                classes: spec.classes,
                mean: index.mean,
                std: index.std,
                resize: spec.resize,
                filter: spec.filter,
                fill: spec.fill,
                quality: spec.quality,
                source: spec.source,
            },
            class_counts: index.class_counts,
            sums: PixelSums {
                count: index.pixel_count,
                sum: index.pixel_sum,
                sum_sq: index.pixel_sum_sq,
            },
            created_by: index.created_by,
        };
        PackedDataset {
            location: index_path.to_path_buf(),
            info,
            kind: Kind::Shards(Box::new(Shards {
                dir,
                starts,
                shards,
                labels,
                box_offsets,
                boxes,
                box_labels,
                open: Mutex::new(HashMap::new()),
                remote,
            })),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// For a dataset in object storage: the requests, bytes, retries and
    /// cache hits of its reads so far.
    pub fn remote_counters(&self) -> Option<[u64; 4]> {
        match &self.kind {
            Kind::Shards(s) => s.remote.as_ref().map(|r| r.counters()),
            Kind::File(_) => None,
        }
    }

    /// Whether the shards are read from object storage.
    pub fn is_remote(&self) -> bool {
        matches!(&self.kind, Kind::Shards(s) if s.remote.is_some())
    }

    /// Fetches the stored bytes of `indices` together (for object storage:
    /// neighbouring samples in one request, many requests in flight) for
    /// this thread's next reads of them; a local dataset reads nothing
    /// here. A sample that failed is reported when it is read.
    pub fn prefetch(&self, indices: &[usize]) {
        let Kind::Shards(s) = &self.kind else {
            return;
        };
        let Some(remote) = &s.remote else {
            return;
        };
        let mut requests = Vec::with_capacity(indices.len());
        let mut which = Vec::with_capacity(indices.len());
        for &index in indices {
            if let Ok((_, k, i)) = self.locate(index) {
                let (start, len) = s.shards[k].address(i);
                requests.push((s.shards[k].name.as_str(), start..start + len));
                which.push(index);
            }
        }
        let results = remote.read(&requests);
        PREFETCHED.with(|cell| {
            let mut cell = cell.borrow_mut();
            cell.0 = self.id;
            cell.1.clear();
            cell.1.extend(which.into_iter().zip(results));
        });
    }

    /// The file, or the dataset's `dataset.json`.
    pub fn path(&self) -> &Path {
        &self.location
    }

    /// The dataset directory of a sharded dataset.
    pub fn shard_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Shards(s) => Some(&s.dir),
            Kind::File(_) => None,
        }
    }

    /// Number of shard files (1 for a packed file).
    pub fn num_shards(&self) -> usize {
        match &self.kind {
            Kind::Shards(s) => s.shards.len(),
            Kind::File(_) => 1,
        }
    }

    /// Attributes and shape (merged over the shards).
    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.info.num_samples
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.info.num_samples == 0
    }

    /// Bytes of one raw sample when every sample has one shape.
    pub fn sample_bytes(&self) -> usize {
        self.info.image_shape.iter().product()
    }

    fn locate(&self, index: usize) -> Result<(&Shards, usize, usize), Error> {
        if index >= self.len() {
            return Err(Error::OutOfRange {
                index,
                len: self.len(),
            });
        }
        match &self.kind {
            Kind::Shards(s) => {
                let k = s.starts.partition_point(|&start| start <= index) - 1;
                Ok((s, k, index - s.starts[k]))
            }
            Kind::File(_) => unreachable!("only for shards"),
        }
    }

    /// `[height, width, channels]` of stored sample `index`.
    pub fn sample_shape(&self, index: usize) -> [usize; 3] {
        match &self.kind {
            Kind::File(r) => r.sample_shape(index),
            Kind::Shards(_) => match self.locate(index) {
                Ok((s, k, i)) if !s.shards[k].shapes.is_empty() => {
                    s.shards[k].shapes[i].map(|v| v as usize)
                }
                _ => self.info.image_shape,
            },
        }
    }

    fn read_shard(
        &self,
        index: usize,
        out: &mut Vec<u8>,
        exact: Option<&mut [u8]>,
    ) -> Result<(), Error> {
        let (s, k, i) = self.locate(index)?;
        let shard = &s.shards[k];
        let (start, len) = shard.address(i);
        if let Some(buf) = &exact {
            if buf.len() as u64 != len {
                return Err(Error::BadSample {
                    index,
                    reason: format!("buffer of {} bytes, the sample has {len}", buf.len()),
                });
            }
        }
        if let Some(remote) = &s.remote {
            let prefetched = PREFETCHED.with(|cell| {
                let mut cell = cell.borrow_mut();
                (cell.0 == self.id).then(|| cell.1.remove(&index)).flatten()
            });
            let bytes = match prefetched {
                Some(bytes) => bytes,
                None => remote
                    .read(&[(shard.name.as_str(), start..start + len)])
                    .pop()
                    .expect("one result per request"),
            }
            .map_err(|e| match e {
                Error::Remote {
                    location,
                    reason,
                    kind,
                } => Error::Remote {
                    location: format!("{location}, sample {index}"),
                    reason,
                    kind,
                },
                e => e,
            })?;
            if bytes.len() as u64 != len {
                return Err(Error::Remote {
                    location: format!("{}, sample {index}", shard.name),
                    reason: format!("{} bytes read, the sample has {len}", bytes.len()),
                    kind: crate::RemoteKind::Failed,
                });
            }
            match exact {
                Some(buf) => buf.copy_from_slice(&bytes),
                None => *out = bytes,
            }
            return Ok(());
        }
        let open = {
            let mut open = s.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get(&k) {
                Some(f) => Arc::clone(f),
                None => {
                    if open.len() >= MAX_OPEN_SHARDS {
                        // Any one: the set is for bounding descriptors, and
                        // reads run through the shards in order anyway.
                        if let Some(&evict) = open.keys().next() {
                            open.remove(&evict);
                        }
                    }
                    let f = Arc::new(OpenShard::open(shard)?);
                    open.insert(k, Arc::clone(&f));
                    f
                }
            }
        };
        let target: &mut [u8] = match exact {
            Some(buf) => buf,
            None => {
                out.clear();
                out.resize(len as usize, 0);
                out
            }
        };
        open.file.read_exact_at(target, start).map_err(|e| {
            Error::io(
                &shard.path,
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "reading sample {index} at byte offset {start}: {}",
                        stokehold_core::fsutil::io_message(&e)
                    ),
                ),
            )
        })?;
        open.check(&shard.path)
    }

    /// Reads raw sample `index` into `out` (its exact size) with one `pread`.
    pub fn read_raw(&self, index: usize, out: &mut [u8]) -> Result<(), Error> {
        match &self.kind {
            Kind::File(r) => r.read_raw(index, out),
            Kind::Shards(_) => {
                if self.info.storage != Storage::Raw {
                    return Err(Error::Format {
                        path: self.location.clone(),
                        reason: "the dataset holds encoded images, not raw".into(),
                    });
                }
                self.read_shard(index, &mut Vec::new(), Some(out))
            }
        }
    }

    /// The stored bytes of sample `index` (encoded image or raw pixels) into
    /// `out`, cleared first: one `pread`.
    pub fn read_bytes(&self, index: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        match &self.kind {
            Kind::File(r) => r.read_bytes(index, out),
            Kind::Shards(_) => self.read_shard(index, out, None),
        }
    }

    /// Class index of sample `index` (-1: none).
    pub fn label(&self, index: usize) -> i64 {
        match &self.kind {
            Kind::File(r) => r.label(index),
            Kind::Shards(s) => s.labels[index],
        }
    }

    /// All labels.
    pub fn labels(&self) -> &[i64] {
        match &self.kind {
            Kind::File(r) => r.labels(),
            Kind::Shards(s) => &s.labels,
        }
    }

    /// Boxes (stored-image pixels) and their labels of sample `index`.
    pub fn boxes(&self, index: usize) -> (&[[f32; 4]], &[i64]) {
        match &self.kind {
            Kind::File(r) => r.boxes(index),
            Kind::Shards(s) => {
                let (a, b) = (
                    s.box_offsets[index] as usize,
                    s.box_offsets[index + 1] as usize,
                );
                (&s.boxes[a..b], &s.box_labels[a..b])
            }
        }
    }

    /// Total number of boxes.
    pub fn num_boxes(&self) -> usize {
        match &self.kind {
            Kind::File(r) => r.num_boxes(),
            Kind::Shards(s) => s.boxes.len(),
        }
    }

    /// Bytes on disk (the file, or every shard and the index).
    pub fn disk_bytes(&self) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        match &self.kind {
            Kind::File(_) => len(&self.location),
            Kind::Shards(s) => {
                s.shards.iter().map(|sh| sh.file_bytes).sum::<u64>() + len(&self.location)
            }
        }
    }
}
