//! [`Dataset`]: fixed-shape batches from a [`Source`], a [`Sequence`].

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::buckets::{rank_batch, rank_batch_count, BucketSet, Buckets};
use crate::buffer::{Buffer, Pool};
use crate::plan::{permutation, splitmix64, Plan, Rng, Shard};
use crate::source::{SampleData, Source};
use crate::transform::{normalize, to_chw, Augment};
use crate::{Error, Sequence};

/// Element type of the images of a batch (`"float32"`, `"uint8"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Dtype {
    /// float32, normalized with the mean and std (or 0–255 if `normalize` is off).
    #[default]
    #[strum(serialize = "float32")]
    F32,
    /// uint8 as stored: normalize on the accelerator.
    #[strum(serialize = "uint8")]
    U8,
}

/// Image layout of a batch, named as Keras's `data_format`
/// (`"channels_last"`, `"channels_first"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Layout {
    /// `(B, H, W, C)`: channels last (Keras, JAX).
    #[default]
    #[strum(serialize = "channels_last")]
    Nhwc,
    /// `(B, C, H, W)`: channels first (PyTorch).
    #[strum(serialize = "channels_first")]
    Nchw,
}

/// What a batch does with a sample that cannot be read or decoded
/// (`"raise"`, `"skip"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum OnError {
    /// The batch fails with the sample's error.
    #[default]
    Raise,
    /// The sample is replaced by the next one of the epoch's order that
    /// loads (at most [`MAX_REPLACEMENTS`] tries), so batch shapes and
    /// counts stay the same; the skipped sample is recorded
    /// ([`Dataset::skipped`]).
    Skip,
}

/// How many following samples `OnError::Skip` tries before giving up.
pub const MAX_REPLACEMENTS: usize = 16;

/// The most skipped samples a [`Dataset`] remembers (the count goes on).
const SKIPPED_KEPT: usize = 10_000;

/// A sample left out of a batch under [`OnError::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The epoch.
    pub epoch: u64,
    /// The sample's index in the source.
    pub index: usize,
    /// Why it could not be loaded (names its file).
    pub reason: String,
}

/// How a [`Dataset`] makes batches.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOptions {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle each epoch (order keyed by `seed` and the epoch).
    pub shuffle: bool,
    /// Seed of the order and of the augmentations.
    pub seed: u64,
    /// Leave out a last, smaller batch.
    pub drop_last: bool,
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks reading disjoint shares.
    pub world_size: usize,
    /// Pad or drop to give ranks equal shares.
    pub shard: Shard,
    /// Image element type.
    pub dtype: Dtype,
    /// Image layout.
    pub layout: Layout,
    /// For float32: subtract the mean and divide by the std.
    pub normalize: bool,
    /// Mean per channel (0–255); default: the source's.
    pub mean: Option<Vec<f64>>,
    /// Std per channel (0–255); default: the source's.
    pub std: Option<Vec<f64>>,
    /// Random augmentations.
    pub augment: Augment,
    /// Also give one-hot labels.
    pub one_hot: bool,
    /// Pad boxes to this many per sample (extra boxes are left out); by
    /// default to the batch's largest count.
    pub max_boxes: Option<usize>,
    /// What to do with a sample that cannot be loaded.
    pub on_error: OnError,
    /// Batches of one shape each from samples of many (aspect-ratio
    /// buckets; see [`crate::BucketSet`]); each batch then has `masks`.
    pub buckets: Option<Buckets>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            batch_size: 32,
            shuffle: true,
            seed: 0,
            drop_last: false,
            rank: 0,
            world_size: 1,
            shard: Shard::Pad,
            dtype: Dtype::F32,
            layout: Layout::Nhwc,
            normalize: true,
            mean: None,
            std: None,
            augment: Augment::default(),
            one_hot: false,
            max_boxes: None,
            on_error: OnError::Raise,
            buckets: None,
        }
    }
}

/// The pixels of a batch, in one contiguous buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Images {
    /// float32 pixels.
    F32(Buffer<f32>),
    /// uint8 pixels.
    U8(Buffer<u8>),
}

/// One batch. Every array is contiguous and row-major; boxes are padded
/// with -1 to `max_boxes` per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The epoch it belongs to.
    pub epoch: u64,
    /// Its index in the epoch.
    pub index: usize,
    /// `(B, H, W, C)` or `(B, C, H, W)` pixels.
    pub images: Images,
    /// The shape of `images`.
    pub shape: [usize; 4],
    /// `(B,)` class indices (-1: none).
    pub labels: Vec<i64>,
    /// `(B, classes)` one-hot labels, when asked for.
    pub one_hot: Option<Vec<f32>>,
    /// `(B, max_boxes, 4)` boxes in image pixels, -1 padded.
    pub boxes: Vec<f32>,
    /// `(B, max_boxes)` box classes, -1 padded.
    pub box_labels: Vec<i64>,
    /// `(B,)` boxes per sample.
    pub box_counts: Vec<i64>,
    /// Boxes per sample after padding.
    pub max_boxes: usize,
    /// `(B,)` index of each sample in the source.
    pub sample_indices: Vec<i64>,
    /// With buckets, `(B, H, W)`: 1 on a sample's pixels, 0 on padding.
    pub masks: Option<Vec<u8>>,
}

/// Fixed-shape batches from a [`Source`]: the [`Sequence`] the Python
/// `Dataset` and the benchmarks run.
pub struct Dataset<S: Source> {
    source: S,
    options: DatasetOptions,
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// The last epoch orders computed: (epoch, order). Two, so that the
    /// generator's epoch boundary never recomputes.
    orders: Mutex<Vec<(u64, Arc<Vec<usize>>)>>,
    /// `(epoch, position)`: that epoch resumes at that position of its
    /// global order (a job restored, perhaps on another number of ranks).
    resume: Mutex<Option<(u64, usize)>>,
    f32_pool: Pool<f32>,
    u8_pool: Pool<u8>,
    /// Samples skipped under [`OnError::Skip`], and how many in all.
    skipped: Mutex<(Vec<Skipped>, u64)>,
    /// With buckets: the shapes and each sample's bucket.
    buckets: Option<BucketSet>,
    /// With buckets: the last epochs' lists of batches (bucket, samples).
    bucket_batches: Mutex<Vec<(u64, EpochBatches)>>,
}

type EpochBatches = Arc<Vec<(u16, Vec<usize>)>>;

impl<S: Source> std::fmt::Debug for Dataset<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("options", &self.options)
            .field("len", &self.source.len())
            .finish()
    }
}

thread_local! {
    // Per worker: the sample being built; with buckets, the sample at its
    // size inside the bucket.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl<S: Source> Dataset<S> {
    /// Checks the options against the source.
    pub fn new(source: S, options: DatasetOptions) -> Result<Self, Error> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if options.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if options.world_size == 0 || options.rank >= options.world_size {
            return bad(format!(
                "rank {} must be below world_size {}",
                options.rank, options.world_size
            ));
        }
        if options.max_boxes.is_some_and(|m| m > 100_000) {
            return bad(format!(
                "max_boxes must be at most 100000, got {}",
                options.max_boxes.unwrap_or(0)
            ));
        }
        options.augment.check()?;
        let [h, w, c] = source.image_shape();
        let buckets = match &options.buckets {
            Some(spec) => {
                if options.augment.random_resized_crop.is_some() {
                    return bad("augment random_resized_crop does not combine with buckets: a crop is resized to one fixed size".into());
                }
                let sizes: Vec<[usize; 2]> = (0..source.len())
                    .map(|i| {
                        let [h, w, _] = source.sample_shape(i);
                        [h, w]
                    })
                    .collect();
                Some(BucketSet::new(&sizes, spec).map_err(Error::InvalidArgument)?)
            }
            None if h == 0 || w == 0 => {
                return bad(
                    "the samples of this source have varying shapes and a batch needs one: give buckets= (aspect-ratio buckets)".into(),
                );
            }
            None => None,
        };
        let (mut scale, mut bias) = (vec![1.0f32; c], vec![0.0f32; c]);
        if options.dtype == Dtype::F32 && options.normalize {
            let stats = source.stats();
            let mean = options
                .mean
                .clone()
                .or_else(|| stats.as_ref().map(|s| s.0.clone()));
            let std = options
                .std
                .clone()
                .or_else(|| stats.as_ref().map(|s| s.1.clone()));
            let (Some(mean), Some(std)) = (mean, std) else {
                return bad("normalize needs a mean and std: the source has none, so pass them (or normalize=False)".into());
            };
            if mean.len() != c || std.len() != c {
                return bad(format!(
                    "mean and std need {c} values each, got {} and {}",
                    mean.len(),
                    std.len()
                ));
            }
            let given = |name: &str| {
                if (name == "mean" && options.mean.is_some())
                    || (name == "std" && options.std.is_some())
                {
                    format!("{name}=")
                } else {
                    format!("the source's {name}")
                }
            };
            if let Some(k) = mean.iter().position(|m| !m.is_finite()) {
                return bad(format!(
                    "{} of channel {k} is {}, not a finite number",
                    given("mean"),
                    mean[k]
                ));
            }
            if let Some(k) = std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                return bad(format!(
                    "{} of channel {k} is {}: normalizing needs a positive std (give std=, or normalize=False)",
                    given("std"),
                    std[k]
                ));
            }
            for k in 0..c {
                scale[k] = (1.0 / std[k]) as f32;
                bias[k] = (-mean[k] / std[k]) as f32;
            }
        }
        Ok(Dataset {
            source,
            options,
            scale,
            bias,
            orders: Mutex::new(Vec::new()),
            resume: Mutex::new(None),
            f32_pool: Pool::default(),
            u8_pool: Pool::default(),
            skipped: Mutex::new((Vec::new(), 0)),
            buckets,
            bucket_batches: Mutex::new(Vec::new()),
        })
    }

    /// With buckets: the `(height, width)` of each bucket.
    pub fn bucket_shapes(&self) -> Option<&[[usize; 2]]> {
        self.buckets.as_ref().map(|b| b.shapes.as_slice())
    }

    /// With buckets: epoch `epoch`'s batches over all ranks, each a bucket
    /// and its samples (see [`BucketSet::epoch_batches`]).
    fn epoch_batches(&self, set: &BucketSet, epoch: u64) -> EpochBatches {
        let mut cache = self
            .bucket_batches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = cache.iter().find(|(e, _)| *e == epoch) {
            return Arc::clone(b);
        }
        let order = self.order(epoch);
        let o = &self.options;
        let batches = Arc::new(set.epoch_batches(&order, o.batch_size, o.drop_last));
        if cache.len() >= 2 {
            cache.remove(0);
        }
        cache.push((epoch, Arc::clone(&batches)));
        batches
    }

    /// Where epoch `epoch` resumes (0 unless [`Dataset::resume_at`] said).
    fn start(&self, epoch: u64) -> usize {
        match *self.resume.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((e, start)) if e == epoch => start,
            _ => 0,
        }
    }

    /// Positions of an epoch: its samples, or with buckets its batches
    /// (what [`Dataset::resume_at`] and [`Dataset::consumed`] count).
    pub fn positions_per_epoch(&self) -> usize {
        match &self.buckets {
            Some(set) => set.total_batches(self.options.batch_size, self.options.drop_last),
            None => self.source.len(),
        }
    }

    fn bucket_len(&self, set: &BucketSet, start: usize) -> usize {
        let o = &self.options;
        rank_batch_count(
            set.total_batches(o.batch_size, o.drop_last),
            o.world_size,
            o.shard,
            start,
        )
    }

    /// Samples skipped under [`OnError::Skip`] (the most recent
    /// 10,000), and how many were skipped in all.
    pub fn skipped(&self) -> (Vec<Skipped>, u64) {
        let guard = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0.clone(), guard.1)
    }

    fn record_skip(&self, epoch: u64, index: usize, error: &Error) {
        let mut guard = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.len() >= SKIPPED_KEPT {
            guard.0.remove(0);
        }
        guard.0.push(Skipped {
            epoch,
            index,
            reason: error.to_string(),
        });
        guard.1 += 1;
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The options.
    pub fn options(&self) -> &DatasetOptions {
        &self.options
    }

    /// Bytes of the pixels of one full batch.
    pub fn batch_bytes(&self) -> u64 {
        let [mut h, mut w, c] = self.source.image_shape();
        if let Some(set) = &self.buckets {
            [h, w] = set.shapes.iter().fold(
                [0, 0],
                |m, s| if s[0] * s[1] > m[0] * m[1] { *s } else { m },
            );
        }
        let elem = match self.options.dtype {
            Dtype::F32 => 4,
            Dtype::U8 => 1,
        };
        (self.options.batch_size.min(self.samples_per_epoch().max(1)) as u64)
            .saturating_mul((h * w * c) as u64)
            .saturating_mul(elem)
    }

    /// Samples in this rank's share of a whole epoch.
    pub fn samples_per_epoch(&self) -> usize {
        match &self.buckets {
            Some(set) => {
                let o = &self.options;
                let batches = self.epoch_batches(set, 0);
                (0..self.bucket_len(set, 0))
                    .map(|k| {
                        batches[rank_batch(batches.len(), o.world_size, o.rank, 0, k)]
                            .1
                            .len()
                    })
                    .sum()
            }
            None => self.plan_from(0).per_rank(),
        }
    }

    fn plan_from(&self, start: usize) -> Plan {
        let o = &self.options;
        Plan {
            n: self.source.len(),
            world: o.world_size,
            rank: o.rank,
            batch: o.batch_size,
            shard: o.shard,
            drop_last: o.drop_last,
            start,
        }
    }

    /// How this rank cuts epoch `epoch` into batches (see [`Plan`]).
    /// (Without buckets: they cut an epoch's list of batches, see
    /// [`crate::BucketSet`].)
    pub fn plan(&self, epoch: u64) -> Plan {
        self.plan_from(self.start(epoch))
    }

    /// Makes epoch `epoch` start at `position` of its global order (the
    /// samples before it were consumed by the whole job, on whatever number
    /// of ranks); other epochs start at 0.
    /// With buckets, `position` counts batches of the epoch's list.
    pub fn resume_at(&self, epoch: u64, position: usize) -> Result<(), Error> {
        let n = self.positions_per_epoch();
        if position > n {
            let unit = if self.buckets.is_some() {
                "batches"
            } else {
                "samples"
            };
            return Err(Error::InvalidArgument(format!(
                "position {position} is past the {n} {unit} of an epoch"
            )));
        }
        *self.resume.lock().unwrap_or_else(|e| e.into_inner()) =
            (position > 0).then_some((epoch, position));
        Ok(())
    }

    /// The resume point set by [`Dataset::resume_at`]: `(epoch, position)`,
    /// or `None` when every epoch starts at 0.
    pub fn resume_point(&self) -> Option<(u64, usize)> {
        *self.resume.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples of epoch `epoch`'s order consumed by the whole job once every
    /// rank has read `batches` of it.
    /// (With buckets: batches of the epoch's list.)
    pub fn consumed(&self, epoch: u64, batches: usize) -> usize {
        match &self.buckets {
            Some(set) => {
                let o = &self.options;
                let total = set.total_batches(o.batch_size, o.drop_last);
                (self.start(epoch) + batches * o.world_size).min(total)
            }
            None => self.plan(epoch).consumed(batches),
        }
    }

    /// What decides the epochs' global orders: the data, `shuffle` and the
    /// seed. A position-based state ([`Dataset::resume_at`]) restores into
    /// any dataset with the same order, whatever its ranks or batch size.
    /// With buckets the batch size and `drop_last` count too (they decide
    /// the list of batches that positions count), and the bucket shapes.
    pub fn order_fingerprint(&self) -> u64 {
        let o = &self.options;
        let mut parts = vec![u64::from(o.shuffle), o.seed];
        if let Some(set) = &self.buckets {
            parts.extend([o.batch_size as u64, u64::from(o.drop_last)]);
            parts.extend(set.shapes.iter().flat_map(|s| [s[0] as u64, s[1] as u64]));
        }
        parts
            .into_iter()
            .fold(self.source.fingerprint(), |acc, v| splitmix64(acc ^ v))
    }

    /// The global order of `epoch` (the same on every rank).
    pub fn order(&self, epoch: u64) -> Arc<Vec<usize>> {
        let mut cache = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, order)) = cache.iter().find(|(e, _)| *e == epoch) {
            return Arc::clone(order);
        }
        let o = &self.options;
        let order = Arc::new(permutation(self.source.len(), o.shuffle, o.seed, epoch));
        if cache.len() >= 2 {
            cache.remove(0);
        }
        cache.push((epoch, Arc::clone(&order)));
        order
    }

    /// The sample indices of batch `index` of `epoch` for this rank.
    pub fn batch_samples(&self, epoch: u64, index: usize) -> Vec<usize> {
        if let Some(set) = &self.buckets {
            let o = &self.options;
            let batches = self.epoch_batches(set, epoch);
            let k = rank_batch(
                batches.len(),
                o.world_size,
                o.rank,
                self.start(epoch),
                index,
            );
            return batches.get(k).map(|b| b.1.clone()).unwrap_or_default();
        }
        let order = self.order(epoch);
        let n = order.len().max(1);
        self.plan(epoch)
            .positions(index)
            .map(|p| order[p % n])
            .collect()
    }

    fn build(&self, epoch: u64, index: usize) -> Result<Batch, Error> {
        let order = self.order(epoch);
        let c = self.source.image_shape()[2];
        // The batch's samples, its shape, and where a failed sample's
        // replacements come from: the epoch's order after it, or (with
        // buckets) the members of its bucket after it.
        let (indices, [h, w], members, first_position) = match &self.buckets {
            Some(set) => {
                let o = &self.options;
                let batches = self.epoch_batches(set, epoch);
                let k = rank_batch(
                    batches.len(),
                    o.world_size,
                    o.rank,
                    self.start(epoch),
                    index,
                );
                let (bucket, samples) = batches.get(k).cloned().ok_or(Error::OutOfRange {
                    index,
                    len: self.bucket_len(set, self.start(epoch)),
                })?;
                let bucket = bucket as usize;
                (samples, set.shapes[bucket], Some(&set.members[bucket]), 0)
            }
            None => {
                let positions = self.plan(epoch).positions(index);
                let first = positions.start;
                let n = order.len().max(1);
                let [h, w, _] = self.source.image_shape();
                (
                    positions.map(|p| order[p % n]).collect(),
                    [h, w],
                    None,
                    first,
                )
            }
        };
        let candidates = |slot: usize, first: usize, attempt: usize| -> Option<usize> {
            match members {
                Some(m) => {
                    let at = m.binary_search(&first).unwrap_or(0);
                    (attempt < m.len()).then(|| m[(at + attempt) % m.len()])
                }
                None => (attempt < order.len())
                    .then(|| order[(first_position + slot + attempt) % order.len()]),
            }
        };
        self.source.prefetch(&indices);
        let b = indices.len();
        let per = h * w * c;
        let chw = self.options.layout == Layout::Nchw;
        let too_big = || {
            Error::InvalidArgument(format!(
                "cannot allocate a batch of {b} × {h}×{w}×{c} {} values: lower batch_size",
                match self.options.dtype {
                    Dtype::F32 => "float32",
                    Dtype::U8 => "uint8",
                }
            ))
        };
        let total = b.checked_mul(per).ok_or_else(too_big)?;
        let mut images = match self.options.dtype {
            Dtype::F32 => Images::F32(self.f32_pool.take(total).ok_or_else(too_big)?),
            Dtype::U8 => Images::U8(self.u8_pool.take(total).ok_or_else(too_big)?),
        };
        let mut masks = members.map(|_| vec![0u8; b * h * w]);
        let mut labels = Vec::with_capacity(b);
        let mut all_boxes = Vec::with_capacity(b);
        let mut sample_indices = Vec::with_capacity(b);
        SCRATCH.with(|cell| -> Result<(), Error> {
            let (pixels, content) = &mut *cell.borrow_mut();
            pixels.resize(if members.is_some() { 0 } else { per }, 0);
            let augment = &self.options.augment;
            let direct = matches!(images, Images::U8(_))
                && !chw
                && !augment.is_active()
                && members.is_none();
            for (slot, &first) in indices.iter().enumerate() {
                let mut attempt = 0;
                let (sample, mut data, mut rng) = loop {
                    let sample = if attempt == 0 {
                        first
                    } else {
                        candidates(slot, first, attempt).unwrap_or(first)
                    };
                    // Augmentations draw from a stream keyed by (seed, epoch, sample).
                    let mut rng = Rng::keyed(&[self.options.seed, epoch, sample as u64]);
                    let loaded = if members.is_some() {
                        let [ch, cw] = self.fitted_size(sample, [h, w]);
                        let n = ch * cw * c;
                        let out = match &mut images {
                            // As wide as the bucket, uint8, channels last:
                            // its rows are the slot's first rows.
                            Images::U8(buf) if !chw && cw == w => {
                                &mut buf[slot * per..slot * per + n]
                            }
                            _ => {
                                // Grown only: no memset for every size.
                                if content.len() < n {
                                    content.resize(n, 0);
                                }
                                &mut content[..n]
                            }
                        };
                        self.load_fitted(sample, out, [ch, cw, c], &mut rng)
                            .map(|d| (d, [ch, cw]))
                    } else {
                        let window = self
                            .source
                            .size_of(sample)
                            .and_then(|(sw, sh)| augment.crop_fraction(&mut rng, sw, sh));
                        match (&mut images, window) {
                            // Raw uint8, channels last, no augmentation: read straight into the batch.
                            (Images::U8(buf), _) if direct => self
                                .source
                                .load(sample, &mut buf[slot * per..(slot + 1) * per])
                                .map(|d| (d, [h, w])),
                            // A random resized crop, cut by the source (from the
                            // full-size image when it decodes).
                            (_, Some(window)) => self
                                .source
                                .load_window(sample, pixels, window)
                                .map(|d| (d, [h, w])),
                            _ => self.source.load(sample, pixels).map(|d| (d, [h, w])),
                        }
                    };
                    match loaded {
                        Ok((data, content)) => break (sample, (data, content), rng),
                        Err(e)
                            if self.options.on_error == OnError::Skip
                                && attempt < MAX_REPLACEMENTS
                                && candidates(slot, first, attempt + 1).is_some() =>
                        {
                            self.record_skip(epoch, sample, &e);
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                };
                let (ref mut sample_data, [ch, cw]) = data;
                sample_indices.push(sample as i64);
                match &mut masks {
                    // Bucketed: flipped (with its mask) before it was placed.
                    Some(m) => {
                        for row in m[slot * h * w..(slot + 1) * h * w]
                            .chunks_exact_mut(w)
                            .take(ch)
                        {
                            row[..cw].fill(1);
                        }
                    }
                    None if !direct => {
                        augment.flip(&mut rng, pixels, [h, w, c], &mut sample_data.boxes)
                    }
                    None => {}
                }
                let range = slot * per..(slot + 1) * per;
                let out = match (&mut images, members) {
                    (Images::U8(buf), Some(_)) if !chw && cw == w => {
                        buf[slot * per + ch * w * c..(slot + 1) * per].fill(0);
                        None
                    }
                    (Images::U8(buf), Some(_)) => Some(Slot::U8(&mut buf[range])),
                    (Images::F32(buf), Some(_)) => Some(Slot::F32(&mut buf[range])),
                    _ => None,
                };
                if let Some(out) = out {
                    place(
                        &content[..ch * cw * c],
                        [ch, cw],
                        out,
                        [h, w, c],
                        chw,
                        &self.scale,
                        &self.bias,
                    );
                }
                match &mut images {
                    _ if members.is_some() => {}
                    Images::F32(buf) => normalize(
                        pixels,
                        &mut buf[slot * per..(slot + 1) * per],
                        c,
                        &self.scale,
                        &self.bias,
                        chw,
                    ),
                    Images::U8(buf) if chw => {
                        to_chw(pixels, &mut buf[slot * per..(slot + 1) * per], c)
                    }
                    Images::U8(buf) if !direct => {
                        buf[slot * per..(slot + 1) * per].copy_from_slice(pixels)
                    }
                    Images::U8(_) => {}
                }
                let data = std::mem::take(sample_data);
                labels.push(data.label);
                all_boxes.push((data.boxes, data.box_labels));
            }
            Ok(())
        })?;
        let max_boxes = self
            .options
            .max_boxes
            .unwrap_or_else(|| all_boxes.iter().map(|(b, _)| b.len()).max().unwrap_or(0));
        let mut boxes = vec![-1.0f32; b * max_boxes * 4];
        let mut box_labels = vec![-1i64; b * max_boxes];
        let mut box_counts = Vec::with_capacity(b);
        for (i, (bx, bl)) in all_boxes.iter().enumerate() {
            let k = bx.len().min(max_boxes);
            for j in 0..k {
                boxes[(i * max_boxes + j) * 4..(i * max_boxes + j + 1) * 4].copy_from_slice(&bx[j]);
                box_labels[i * max_boxes + j] = bl[j];
            }
            box_counts.push(k as i64);
        }
        let one_hot = self.options.one_hot.then(|| {
            let k = self.source.classes().len();
            let mut v = vec![0.0f32; b * k];
            for (i, &l) in labels.iter().enumerate() {
                if l >= 0 && (l as usize) < k {
                    v[i * k + l as usize] = 1.0;
                }
            }
            v
        });
        let shape = if chw { [b, c, h, w] } else { [b, h, w, c] };
        Ok(Batch {
            epoch,
            index,
            images,
            shape,
            labels,
            one_hot,
            boxes,
            box_labels,
            box_counts,
            max_boxes,
            sample_indices,
            masks,
        })
    }

    /// With buckets: the `[height, width]` of sample `index` in the `[h, w]`
    /// bucket: its own when it fits, else scaled down, its aspect kept, to
    /// fit (never enlarged, never cropped).
    fn fitted_size(&self, index: usize, [h, w]: [usize; 2]) -> [usize; 2] {
        let [sh, sw, _] = self.source.sample_shape(index);
        let scale = (h as f64 / sh.max(1) as f64)
            .min(w as f64 / sw.max(1) as f64)
            .min(1.0);
        [
            ((sh as f64 * scale).round() as usize).clamp(1, h),
            ((sw as f64 * scale).round() as usize).clamp(1, w),
        ]
    }

    /// With buckets: sample `index` at `[ch, cw]` (see
    /// [`Dataset::fitted_size`]) into `out`, flipped when `hflip` draws so;
    /// [`place`] then puts it at the bucket's top-left.
    fn load_fitted(
        &self,
        index: usize,
        out: &mut [u8],
        [ch, cw, c]: [usize; 3],
        rng: &mut Rng,
    ) -> Result<SampleData, Error> {
        let mut data = self.source.load_resized(index, out, [ch, cw])?;
        self.options
            .augment
            .flip(rng, out, [ch, cw, c], &mut data.boxes);
        Ok(data)
    }
}

/// Puts a `[ch, cw, c]` sample at the top-left of its `[h, w, c]` slot of a
/// batch, in the batch's layout and element type; the rest is padding (0,
/// or the normalized 0 for float32).
fn place(
    content: &[u8],
    [ch, cw]: [usize; 2],
    slot: Slot<'_>,
    [h, w, c]: [usize; 3],
    chw: bool,
    scale: &[f32],
    bias: &[f32],
) {
    match slot {
        Slot::U8(out) if !chw => {
            for (y, row) in out.chunks_exact_mut(w * c).enumerate() {
                if y < ch {
                    row[..cw * c].copy_from_slice(&content[y * cw * c..(y + 1) * cw * c]);
                    row[cw * c..].fill(0);
                } else {
                    row.fill(0);
                }
            }
        }
        Slot::F32(out) if !chw => {
            let pad: Vec<f32> = (0..w * c).map(|i| bias[i % c]).collect();
            for (y, row) in out.chunks_exact_mut(w * c).enumerate() {
                if y < ch {
                    let src = &content[y * cw * c..(y + 1) * cw * c];
                    normalize(src, &mut row[..cw * c], c, scale, bias, false);
                    row[cw * c..].copy_from_slice(&pad[cw * c..]);
                } else {
                    row.copy_from_slice(&pad);
                }
            }
        }
        Slot::U8(out) => {
            out.fill(0);
            for (i, px) in content.chunks_exact(c).enumerate() {
                let (y, x) = (i / cw, i % cw);
                for (k, &v) in px.iter().enumerate() {
                    out[(k * h + y) * w + x] = v;
                }
            }
        }
        Slot::F32(out) => {
            for (k, plane) in out.chunks_exact_mut(h * w).enumerate() {
                plane.fill(bias[k]);
            }
            for (i, px) in content.chunks_exact(c).enumerate() {
                let (y, x) = (i / cw, i % cw);
                for (k, &v) in px.iter().enumerate() {
                    out[(k * h + y) * w + x] = f32::from(v) * scale[k] + bias[k];
                }
            }
        }
    }
}

/// One sample's part of a batch's pixels.
enum Slot<'a> {
    U8(&'a mut [u8]),
    F32(&'a mut [f32]),
}

impl<S: Source + 'static> Sequence for Dataset<S> {
    type Batch = Batch;

    fn len(&self) -> usize {
        match &self.buckets {
            Some(set) => self.bucket_len(set, 0),
            None => self.plan_from(0).batches(),
        }
    }

    fn len_of_epoch(&self, epoch: u64) -> usize {
        match &self.buckets {
            Some(set) => self.bucket_len(set, self.start(epoch)),
            None => self.plan(epoch).batches(),
        }
    }

    fn batch(&self, epoch: u64, index: usize) -> Result<Batch, Error> {
        let len = self.len_of_epoch(epoch);
        if index >= len {
            return Err(Error::OutOfRange { index, len });
        }
        self.build(epoch, index)
    }

    fn seed(&self) -> u64 {
        self.options.seed
    }

    /// An epoch's batches are a pure function of its number (and a resumed
    /// position, which restoring a loader re-reads). Not under
    /// [`OnError::Skip`]: a sample skipped while reading ahead would be
    /// recorded before its epoch is delivered.
    fn independent_epochs(&self) -> bool {
        self.options.on_error != OnError::Skip
    }

    /// What decides the batches: the order ([`Dataset::order_fingerprint`])
    /// and how this rank cuts it (batch size, ranks, padding). Not the
    /// transforms: a state restores across those.
    fn fingerprint(&self) -> u64 {
        let o = &self.options;
        [
            o.batch_size as u64,
            o.world_size as u64,
            o.rank as u64,
            o.shard as u64,
            u64::from(o.drop_last),
        ]
        .into_iter()
        .fold(self.order_fingerprint(), |acc, v| splitmix64(acc ^ v))
    }
}
