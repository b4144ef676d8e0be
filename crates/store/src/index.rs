//! A dataset of shards: a directory of packed files (format 2) and an
//! index, `dataset.json`, written last. The index holds everything a reader
//! needs to serve a sample without libhdf5: shard names, sample counts,
//! classes, merged statistics, and per shard the byte address of every
//! sample, its label and boxes.
//!
//! Packing is two-phase, so that any scheduler can run it: each part writes
//! its shards into `part-IIIII-of-NNNNN/` and, last, a `part.json` holding
//! that part's index entries; [`commit`] checks that every part is there
//! and consistent, and writes `dataset.json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::format::{PixelSums, Storage};
use crate::reader::StoreReader;

/// The index file's name in a dataset directory.
pub const INDEX_FILE: &str = "dataset.json";
/// A part's record file, written last by the part.
pub const PART_FILE: &str = "part.json";
/// The `format` of the index file.
pub const INDEX_FORMAT: &str = "stokehold-dataset";
/// The index format version this build writes (and the newest it reads).
pub const INDEX_VERSION: u32 = 1;

/// Where a shard's samples are, and what they are. Offsets are absolute
/// byte addresses in the shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name, relative to the dataset directory.
    pub path: String,
    /// Size of the file in bytes (a reader checks it: a replaced shard is refused).
    pub file_bytes: u64,
    /// Samples in the shard.
    pub num_samples: usize,
    /// Global index of its first sample.
    pub first_sample: usize,
    /// Raw storage of one shape: sample `i` starts at `data_offset + i × sample_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_bytes: Option<u64>,
    /// Byte address of the shard's pixel or encoded data.
    pub data_offset: u64,
    /// Otherwise: sample `i` is bytes `offsets[i]..offsets[i + 1]` from
    /// `data_offset` (`num_samples + 1` values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<u64>,
    /// `(height, width, channels)` per sample when shapes vary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shapes: Vec<[u32; 3]>,
    /// Class index per sample (-1: none).
    pub labels: Vec<i64>,
    /// Boxes of sample `i` are `boxes[box_offsets[i]..box_offsets[i + 1]]`.
    pub box_offsets: Vec<u64>,
    /// `x_min, y_min, x_max, y_max` in stored-image pixels.
    pub boxes: Vec<[f32; 4]>,
    /// Class index per box.
    pub box_labels: Vec<i64>,
    /// Position of each sample in the manifest it was packed from.
    pub source_index: Vec<u64>,
    /// Exact pixel sums of the shard.
    pub pixel_count: u64,
    /// Per-channel sums.
    pub pixel_sum: Vec<u64>,
    /// Per-channel sums of squares.
    pub pixel_sum_sq: Vec<u64>,
}

impl ShardEntry {
    /// The entry of a finished shard file (read once, through libhdf5).
    pub fn of_file(reader: &StoreReader, path: String, first_sample: usize) -> Result<Self, Error> {
        let n = reader.len();
        let file_bytes = std::fs::metadata(reader.path())
            .map_err(|e| Error::io(reader.path(), e))?
            .len();
        let (data_offset, sample_bytes, offsets) = match (reader.sample_range(0), n) {
            (_, 0) => (0, Some(reader.sample_bytes() as u64), Vec::new()),
            (None, _) => {
                return Err(Error::Format {
                    path: reader.path().to_path_buf(),
                    reason: "format 1 encoded files cannot be shards; pack again".into(),
                })
            }
            (Some((start, _)), _) => {
                if reader.info().storage == Storage::Raw && reader.info().image_shape[0] > 0 {
                    (start, Some(reader.sample_bytes() as u64), Vec::new())
                } else {
                    let mut offsets = Vec::with_capacity(n + 1);
                    for i in 0..n {
                        offsets.push(reader.sample_range(i).expect("an address").0 - start);
                    }
                    let (last, len) = reader.sample_range(n - 1).expect("an address");
                    offsets.push(last + len - start);
                    (start, None, offsets)
                }
            }
        };
        let varying = reader.info().image_shape[0] == 0;
        let mut box_offsets = Vec::with_capacity(n + 1);
        let (mut boxes, mut box_labels) = (Vec::new(), Vec::new());
        box_offsets.push(0);
        for i in 0..n {
            let (b, l) = reader.boxes(i);
            boxes.extend_from_slice(b);
            box_labels.extend_from_slice(l);
            box_offsets.push(boxes.len() as u64);
        }
        let sums = &reader.info().sums;
        Ok(ShardEntry {
            path,
            file_bytes,
            num_samples: n,
            first_sample,
            sample_bytes,
            data_offset,
            offsets,
            shapes: if varying {
                (0..n)
                    .map(|i| reader.sample_shape(i).map(|v| v as u32))
                    .collect()
            } else {
                Vec::new()
            },
            labels: reader.labels().to_vec(),
            box_offsets,
            boxes,
            box_labels,
            source_index: reader
                .read_source_index()?
                .into_iter()
                .map(|v| v.max(0) as u64)
                .collect(),
            pixel_count: sums.count,
            pixel_sum: sums.sum.clone(),
            pixel_sum_sq: sums.sum_sq.clone(),
        })
    }

    /// The shard's exact pixel sums.
    pub fn sums(&self) -> PixelSums {
        PixelSums {
            count: self.pixel_count,
            sum: self.pixel_sum.clone(),
            sum_sq: self.pixel_sum_sq.clone(),
        }
    }
}

/// What a dataset is, the same for all its shards: the options it was
/// packed with. Parts must agree on it to be committed together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// `(height, width, channels)`; `(-1, -1, channels)` when shapes vary.
    pub image_shape: [i64; 3],
    /// `"raw"` or `"encoded"`.
    pub storage: String,
    /// Encoded storage: `"jpeg"` or `"png"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// JPEG quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// Resize policy.
    pub resize: String,
    /// Resampling filter.
    pub filter: String,
    /// Letterbox fill value.
    pub fill: u8,
    /// Class names.
    pub classes: Vec<String>,
    /// Samples in the manifest that was packed (all parts together).
    pub manifest_samples: usize,
    /// What was packed.
    pub source: String,
}

/// A part's record: its shards, written last by the part. (`S` is how the
/// shards are held: in memory, or [`ShardSpill`] while a part is written.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord<S = Vec<ShardEntry>> {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Part `part` of `parts`.
    pub part: usize,
    /// How many parts the dataset has.
    pub parts: usize,
    /// Manifest positions `[start, end)` this part packed.
    pub range: [usize; 2],
    /// The options, identical across parts.
    pub spec: DatasetSpec,
    /// Samples of the range left out (failed to decode), with the reasons
    /// in the packer's report.
    pub skipped: usize,
    /// The shards, in order (paths relative to the dataset directory;
    /// `first_sample` counts from the part's first sample).
    pub shards: S,
}

/// The index of a dataset directory. (`S` is how the shards are held: in
/// memory, or [`ShardSpill`] while a pack writes the index.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetIndex<S = Vec<ShardEntry>> {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// [`INDEX_VERSION`].
    pub format_version: u32,
    /// The shard files' format version.
    pub shard_format_version: u32,
    /// Samples in all shards.
    pub num_samples: usize,
    /// The options the dataset was packed with.
    pub spec: DatasetSpec,
    /// Samples per class.
    pub class_counts: Vec<u64>,
    /// Per-channel mean of every stored pixel (0–255), merged exactly from the shards' sums.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation.
    pub std: Vec<f64>,
    /// Exact sums over all shards.
    pub pixel_count: u64,
    /// Per-channel sums.
    pub pixel_sum: Vec<u64>,
    /// Per-channel sums of squares.
    pub pixel_sum_sq: Vec<u64>,
    /// Which stokehold wrote it.
    pub created_by: String,
    /// The shards, in sample order.
    pub shards: S,
}

/// What an index sums over its shards.
#[derive(Debug, Clone)]
struct Totals {
    num_samples: usize,
    sums: PixelSums,
    class_counts: Vec<u64>,
}

impl Totals {
    fn new(channels: usize, classes: usize) -> Totals {
        Totals {
            num_samples: 0,
            sums: PixelSums::new(channels),
            class_counts: vec![0u64; classes],
        }
    }

    fn add(&mut self, shard: &ShardEntry) {
        self.num_samples += shard.num_samples;
        self.sums.merge(&shard.sums());
        for &l in &shard.labels {
            if let Some(c) = usize::try_from(l)
                .ok()
                .and_then(|l| self.class_counts.get_mut(l))
            {
                *c += 1;
            }
        }
    }
}

impl<S> DatasetIndex<S> {
    fn assemble(spec: DatasetSpec, totals: Totals, shards: S) -> DatasetIndex<S> {
        let (mean, std) = totals.sums.mean_std();
        DatasetIndex {
            format: INDEX_FORMAT.into(),
            format_version: INDEX_VERSION,
            shard_format_version: crate::FORMAT_VERSION,
            num_samples: totals.num_samples,
            spec,
            class_counts: totals.class_counts,
            mean,
            std,
            pixel_count: totals.sums.count,
            pixel_sum: totals.sums.sum,
            pixel_sum_sq: totals.sums.sum_sq,
            created_by: concat!("stokehold ", env!("CARGO_PKG_VERSION")).into(),
            shards,
        }
    }

    /// Writes the index atomically: a temporary file beside it, synced and
    /// renamed, so a reader never sees half an index.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, Error>
    where
        S: Serialize,
    {
        let dest = dir.join(INDEX_FILE);
        write_json_atomic(&dest, self)?;
        Ok(dest)
    }
}

impl DatasetIndex {
    /// The index of `shards` (in sample order; `first_sample` is set here).
    pub fn new(spec: DatasetSpec, mut shards: Vec<ShardEntry>) -> DatasetIndex {
        let mut totals = Totals::new(spec.image_shape[2].max(0) as usize, spec.classes.len());
        for s in &mut shards {
            s.first_sample = totals.num_samples;
            totals.add(s);
        }
        DatasetIndex::assemble(spec, totals, shards)
    }

    /// Reads and checks an index (every number that addresses bytes or
    /// samples is checked against the others before it is used).
    pub fn load(path: &Path, max_bytes: u64) -> Result<DatasetIndex, Error> {
        let bytes = stokehold_core::fsutil::read_capped(path, max_bytes, "max_source_bytes")
            .map_err(|e| Error::io(path, e.into()))?;
        DatasetIndex::parse(&bytes, path)
    }

    /// Parses and checks an index read from `path` (which names it in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<DatasetIndex, Error> {
        let bad = |reason: String| Error::Format {
            path: path.to_path_buf(),
            reason,
        };
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            format_version: Option<u64>,
        }
        let head: Head = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not a stokehold dataset index: {e}")))?;
        if head.format.as_deref() != Some(INDEX_FORMAT) {
            return Err(bad(format!(
                "not a stokehold dataset index (format is not {INDEX_FORMAT:?})"
            )));
        }
        let version = head.format_version.unwrap_or(0);
        if version == 0 || version > u64::from(INDEX_VERSION) {
            return Err(bad(format!(
                "index format version {version} is newer than this stokehold reads ({INDEX_VERSION})"
            )));
        }
        let index: DatasetIndex =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("damaged index: {e}")))?;
        index.check().map_err(bad)?;
        Ok(index)
    }

    fn check(&self) -> Result<(), String> {
        let [h, w, c] = self.spec.image_shape;
        let varying = h == -1 && w == -1;
        if !(c == 1 || c == 3) || !(varying || (h > 0 && w > 0 && h <= 1 << 20 && w <= 1 << 20)) {
            return Err(format!(
                "image_shape {:?} is not (H, W, 1 or 3)",
                self.spec.image_shape
            ));
        }
        let k = self.spec.classes.len() as i64;
        let mut expected_first = 0usize;
        for (si, s) in self.shards.iter().enumerate() {
            let name = &s.path;
            let n = s.num_samples;
            if s.first_sample != expected_first {
                return Err(format!(
                    "shard {name}: first_sample {} should be {expected_first}",
                    s.first_sample
                ));
            }
            expected_first = expected_first
                .checked_add(n)
                .ok_or_else(|| format!("shard {name}: sample count overflows"))?;
            if Path::new(name).is_absolute() || name.split('/').any(|p| p == "..") {
                return Err(format!(
                    "shard {si}: path {name:?} must stay inside the dataset directory"
                ));
            }
            if s.labels.len() != n || s.box_offsets.len() != n + 1 || s.source_index.len() != n {
                return Err(format!(
                    "shard {name}: per-sample arrays do not hold {n} samples"
                ));
            }
            if let Some(l) = s.labels.iter().find(|&&l| l < -1 || l >= k) {
                return Err(format!(
                    "shard {name}: label {l} is outside the {k} classes"
                ));
            }
            if s.box_offsets.first() != Some(&0)
                || s.box_offsets.last() != Some(&(s.boxes.len() as u64))
                || s.box_offsets.windows(2).any(|w| w[0] > w[1])
                || s.box_labels.len() != s.boxes.len()
            {
                return Err(format!(
                    "shard {name}: box_offsets do not index the boxes in order"
                ));
            }
            if s.boxes.iter().flatten().any(|v| !v.is_finite()) {
                return Err(format!("shard {name}: a box coordinate is not finite"));
            }
            if let Some(l) = s.box_labels.iter().find(|&&l| l < 0 || l >= k) {
                return Err(format!(
                    "shard {name}: box label {l} is outside the {k} classes"
                ));
            }
            let end = match (s.sample_bytes, s.offsets.is_empty()) {
                (Some(b), true) if !varying && b == (h * w * c) as u64 => b
                    .checked_mul(n as u64)
                    .and_then(|t| t.checked_add(s.data_offset)),
                (None, false) if s.offsets.len() == n + 1 => {
                    if s.offsets[0] != 0 || s.offsets.windows(2).any(|w| w[0] > w[1]) {
                        return Err(format!("shard {name}: offsets are not in order"));
                    }
                    s.data_offset.checked_add(s.offsets[n])
                }
                _ => {
                    return Err(format!(
                        "shard {name}: neither sample_bytes nor offsets fit its samples"
                    ))
                }
            };
            if end.is_none_or(|e| e > s.file_bytes) {
                return Err(format!(
                    "shard {name}: its samples end past its {} bytes",
                    s.file_bytes
                ));
            }
            if varying && s.shapes.len() != n {
                return Err(format!("shard {name}: shapes do not hold {n} samples"));
            }
        }
        if expected_first != self.num_samples {
            return Err(format!(
                "the shards hold {expected_first} samples, the index says {}",
                self.num_samples
            ));
        }
        Ok(())
    }
}

/// The shard entries of a pack in progress, held in an unnamed temporary
/// file in the dataset directory (one JSON line per shard) instead of in
/// memory, so that a pack's memory does not grow with its samples (the
/// entries hold a label, box offset and source position per sample). The
/// index or part record is then written from it: it serializes to JSON as
/// the list of its entries, byte for byte what `Vec<ShardEntry>` gives.
/// (Only `serde_json` writes it; the entries are kept as JSON text.)
#[derive(Debug)]
pub struct ShardSpill {
    file: std::fs::File,
    shards: usize,
    file_bytes: u64,
    totals: Totals,
}

impl ShardSpill {
    /// An empty spill in `dir` (the file vanishes with the value, or with
    /// the process), for samples of `channels` and `classes` classes.
    pub fn new(dir: &Path, channels: usize, classes: usize) -> Result<ShardSpill, Error> {
        Ok(ShardSpill {
            file: tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?,
            shards: 0,
            file_bytes: 0,
            totals: Totals::new(channels, classes),
        })
    }

    /// Adds the next shard; its `first_sample` is set to the samples before it.
    pub fn push(&mut self, mut entry: ShardEntry) -> Result<(), Error> {
        entry.first_sample = self.totals.num_samples;
        let mut line = serde_json::to_vec(&entry).map_err(|e| Error::Format {
            path: PathBuf::from(&entry.path),
            reason: format!("cannot write its index entry: {e}"),
        })?;
        line.push(b'\n');
        (&self.file)
            .write_all(&line)
            .map_err(|e| Error::io(Path::new(&entry.path), e))?;
        self.totals.add(&entry);
        self.shards += 1;
        self.file_bytes += entry.file_bytes;
        Ok(())
    }

    /// Shards so far.
    pub fn len(&self) -> usize {
        self.shards
    }

    /// Whether no shard was added.
    pub fn is_empty(&self) -> bool {
        self.shards == 0
    }

    /// Samples in all shards so far.
    pub fn num_samples(&self) -> usize {
        self.totals.num_samples
    }

    /// Bytes of all shard files so far.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Exact pixel sums of all shards so far.
    pub fn sums(&self) -> &PixelSums {
        &self.totals.sums
    }

    /// The dataset's index, with these shards (in the order they were added).
    pub fn into_index(self, spec: DatasetSpec) -> DatasetIndex<ShardSpill> {
        let totals = self.totals.clone();
        DatasetIndex::assemble(spec, totals, self)
    }
}

impl Serialize for ShardSpill {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        use std::io::{BufRead, Seek};
        let mut file = &self.file;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(S::Error::custom)?;
        let mut lines = std::io::BufReader::new(file);
        let mut seq = serializer.serialize_seq(Some(self.shards))?;
        let mut line = String::new();
        for k in 0..self.shards {
            line.clear();
            lines.read_line(&mut line).map_err(S::Error::custom)?;
            let entry: &serde_json::value::RawValue = serde_json::from_str(line.trim_end())
                .map_err(|e| S::Error::custom(format!("shard {k}'s spilled entry: {e}")))?;
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

/// Writes `value` as JSON to `dest` atomically (temporary file, fsync, rename).
pub fn write_json_atomic<T: Serialize>(dest: &Path, value: &T) -> Result<(), Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".stokehold-")
        .suffix(".json.tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        serde_json::to_writer(&mut out, value).map_err(|e| Error::io(dest, e.into()))?;
        out.write_all(b"\n").map_err(|e| Error::io(dest, e))?;
        out.flush().map_err(|e| Error::io(dest, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(dest, e))?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(())
}

/// The folder a part writes into: `part-IIIII-of-NNNNN`.
pub fn part_dir_name(part: usize, parts: usize) -> String {
    format!("part-{part:05}-of-{parts:05}")
}

/// Checks that every part of the dataset in `dir` is complete and
/// consistent (same options, same part count, manifest ranges that cover it
/// with no gap and no overlap, shard files present with their recorded
/// sizes), then writes `dir/dataset.json`. An incomplete directory is
/// refused with a message that names what is missing.
pub fn commit(dir: &Path, max_bytes: u64) -> Result<DatasetIndex, Error> {
    let bad = |reason: String| Error::Format {
        path: dir.to_path_buf(),
        reason,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut records: BTreeMap<usize, PartRecord> = BTreeMap::new();
    let mut started: Vec<String> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((i, n)) = parse_part_dir(&name) else {
            continue;
        };
        counts.push(n);
        let record_path = entry.path().join(PART_FILE);
        if !record_path.exists() {
            started.push(name);
            continue;
        }
        let bytes =
            stokehold_core::fsutil::read_capped(&record_path, max_bytes, "max_source_bytes")
                .map_err(|e| Error::io(&record_path, e.into()))?;
        records.insert(i, parse_part_record(&name, &bytes).map_err(bad)?);
    }
    let index = check_parts(records, started, counts, |name| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    })
    .map_err(bad)?;
    index.save(dir)?;
    Ok(index)
}

/// The parts found in a dataset (their records by part number, the part
/// folders started without a record, and the part counts their names
/// give) checked as [`commit`] describes, with `size` the size of a shard
/// (its path relative to the dataset): the index, or what is wrong.
pub fn check_parts(
    records: BTreeMap<usize, PartRecord>,
    started: Vec<String>,
    mut counts: Vec<usize>,
    size: impl Fn(&str) -> Result<u64, String>,
) -> Result<DatasetIndex, String> {
    counts.sort_unstable();
    counts.dedup();
    let parts = match counts[..] {
        [] => {
            return Err(
                "no part-*-of-* folders: nothing to commit (pack with --part i/N first)".into(),
            )
        }
        [n] => n,
        _ => {
            return Err(format!(
                "parts of different splits are mixed in one directory: of {}",
                counts
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", of ")
            ))
        }
    };
    let missing: Vec<String> = (0..parts)
        .filter(|i| !records.contains_key(i))
        .map(|i| {
            let name = part_dir_name(i, parts);
            if started.contains(&name) {
                format!("{name} (started, not finished: no {PART_FILE})")
            } else {
                format!("{name} (not started)")
            }
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} of {parts} parts are not complete: {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    let first = &records[&0];
    let spec = first.spec.clone();
    let mut expected_start = 0;
    let mut shards = Vec::new();
    for (i, r) in &records {
        if r.spec != spec {
            return Err(format!(
                "part {i} was packed with other options or classes than part 0 ({})",
                spec_difference(&spec, &r.spec)
            ));
        }
        if r.range[0] != expected_start {
            let what = if r.range[0] > expected_start {
                "gap"
            } else {
                "overlap"
            };
            return Err(format!(
                "a {what} in the manifest ranges: part {i} starts at sample {}, after {expected_start}",
                r.range[0]
            ));
        }
        expected_start = r.range[1];
        for s in &r.shards {
            let len = size(&s.path)
                .map_err(|e| format!("shard {} of part {i} is missing: {e}", s.path))?;
            if len != s.file_bytes {
                return Err(format!(
                    "shard {} of part {i} has {len} bytes, its record says {}",
                    s.path, s.file_bytes
                ));
            }
            shards.push(s.clone());
        }
    }
    if expected_start != spec.manifest_samples {
        return Err(format!(
            "the parts cover samples 0..{expected_start} of a manifest of {}",
            spec.manifest_samples
        ));
    }
    let index = DatasetIndex::new(spec, shards);
    index.check()?;
    Ok(index)
}

/// The record of part folder `name` (`part-IIIII-of-NNNNN`), checked to
/// describe that part.
pub fn parse_part_record(name: &str, bytes: &[u8]) -> Result<PartRecord, String> {
    let (i, n) = parse_part_dir(name).ok_or_else(|| format!("{name} is not a part folder"))?;
    let record: PartRecord =
        serde_json::from_slice(bytes).map_err(|e| format!("{name}/{PART_FILE} is damaged: {e}"))?;
    if record.format != INDEX_FORMAT || record.part != i || record.parts != n {
        return Err(format!(
            "{name}/{PART_FILE} does not describe part {i} of {n}"
        ));
    }
    Ok(record)
}

/// `(i, n)` of a part folder's name `part-IIIII-of-NNNNN`.
pub fn parse_part_dir(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("part-")?;
    let (i, n) = rest.split_once("-of-")?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (i < n).then_some((i, n))
}

fn spec_difference(a: &DatasetSpec, b: &DatasetSpec) -> String {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut diff = Vec::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, va) in a {
            if b.get(k) != Some(va) {
                diff.push(format!("{k} differs"));
            }
        }
    }
    diff.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_folders_are_named_and_parsed() {
        assert_eq!(part_dir_name(3, 8), "part-00003-of-00008");
        assert_eq!(parse_part_dir("part-00003-of-00008"), Some((3, 8)));
        assert_eq!(parse_part_dir("part-00008-of-00008"), None);
        assert_eq!(parse_part_dir("shard-00001.h5"), None);
    }

    fn entry(k: usize, n: usize) -> ShardEntry {
        ShardEntry {
            path: format!("shard-{k:05}.h5"),
            file_bytes: 1000 + k as u64,
            num_samples: n,
            first_sample: 999, // set by whoever assembles the index
            sample_bytes: None,
            data_offset: 4096,
            offsets: (0..=n as u64).map(|i| i * 17).collect(),
            shapes: (0..n as u32).map(|i| [i + 1, 2 * i + 1, 3]).collect(),
            labels: (0..n as i64).map(|i| i % 3 - 1).collect(),
            box_offsets: (0..=n as u64).collect(),
            boxes: (0..n)
                .map(|i| [0.1, 0.2 + i as f32 / 3.0, 1e-7, 123.456])
                .collect(),
            box_labels: (0..n as i64).collect(),
            source_index: (0..n as u64).map(|i| 7 * i).collect(),
            pixel_count: 10 * n as u64,
            pixel_sum: vec![k as u64, 2, 3],
            pixel_sum_sq: vec![4, 5, 6 + k as u64],
        }
    }

    fn spec() -> DatasetSpec {
        DatasetSpec {
            image_shape: [-1, -1, 3],
            storage: "encoded".into(),
            codec: Some("png".into()),
            quality: None,
            resize: "fit".into(),
            filter: "triangle".into(),
            fill: 0,
            classes: vec!["a".into(), "b".into()],
            manifest_samples: 20,
            source: "/x".into(),
        }
    }

    #[test]
    fn a_spilled_index_is_written_as_the_index_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![entry(0, 5), entry(1, 0), entry(2, 7)];
        let mut spill = ShardSpill::new(dir.path(), 3, 2).unwrap();
        for e in &entries {
            spill.push(e.clone()).unwrap();
        }
        assert_eq!(
            (spill.len(), spill.num_samples(), spill.file_bytes()),
            (3, 12, 3003)
        );
        let in_memory = DatasetIndex::new(spec(), entries.clone());
        let spilled = spill.into_index(spec());
        let (a, b) = (
            serde_json::to_string(&in_memory).unwrap(),
            serde_json::to_string(&spilled).unwrap(),
        );
        assert_eq!(a, b);
        // Written twice (the file is read from its start each time), and read back.
        assert_eq!(serde_json::to_string(&spilled).unwrap(), a);
        let back: DatasetIndex = serde_json::from_str(&b).unwrap();
        assert_eq!(back, in_memory);
        assert_eq!(back.shards[2].first_sample, 5);
        assert_eq!(back.class_counts, vec![4, 3]);

        let mut spill = ShardSpill::new(dir.path(), 3, 2).unwrap();
        for e in &entries {
            spill.push(e.clone()).unwrap();
        }
        fn record<S>(shards: S) -> PartRecord<S> {
            PartRecord {
                format: INDEX_FORMAT.into(),
                part: 1,
                parts: 2,
                range: [10, 20],
                spec: spec(),
                skipped: 0,
                shards,
            }
        }
        let mut placed = entries;
        for (e, first) in placed.iter_mut().zip([0, 5, 5]) {
            e.first_sample = first;
        }
        assert_eq!(
            serde_json::to_string(&record(spill)).unwrap(),
            serde_json::to_string(&record(placed)).unwrap()
        );
        // Nothing is left in the directory: the spill has no name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
