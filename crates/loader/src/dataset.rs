//! [`Dataset`]: fixed-shape batches from a [`Source`], a [`Sequence`].

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::buffer::{Buffer, Pool};
use crate::plan::{permutation, splitmix64, Plan, Rng, Shard};
use crate::source::Source;
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
}

impl<S: Source> std::fmt::Debug for Dataset<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("options", &self.options)
            .field("len", &self.source.len())
            .finish()
    }
}

thread_local! {
    // Per worker: the sample being built and the augmentation scratch.
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
        if h == 0 || w == 0 {
            return bad(
                "the samples of this source have varying shapes; a batch needs one shape".into(),
            );
        }
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
        })
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
        let [h, w, c] = self.source.image_shape();
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
        self.plan_from(0).per_rank()
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
    pub fn plan(&self, epoch: u64) -> Plan {
        let resume = *self.resume.lock().unwrap_or_else(|e| e.into_inner());
        let start = match resume {
            Some((e, start)) if e == epoch => start,
            _ => 0,
        };
        self.plan_from(start)
    }

    /// Makes epoch `epoch` start at `position` of its global order (the
    /// samples before it were consumed by the whole job, on whatever number
    /// of ranks); other epochs start at 0.
    pub fn resume_at(&self, epoch: u64, position: usize) -> Result<(), Error> {
        if position > self.source.len() {
            return Err(Error::InvalidArgument(format!(
                "position {position} is past the {} samples of an epoch",
                self.source.len()
            )));
        }
        *self.resume.lock().unwrap_or_else(|e| e.into_inner()) =
            (position > 0).then_some((epoch, position));
        Ok(())
    }

    /// Samples of epoch `epoch`'s order consumed by the whole job once every
    /// rank has read `batches` of it.
    pub fn consumed(&self, epoch: u64, batches: usize) -> usize {
        self.plan(epoch).consumed(batches)
    }

    /// What decides the epochs' global orders: the data, `shuffle` and the
    /// seed. A position-based state ([`Dataset::resume_at`]) restores into
    /// any dataset with the same order, whatever its ranks or batch size.
    pub fn order_fingerprint(&self) -> u64 {
        let o = &self.options;
        [u64::from(o.shuffle), o.seed]
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
        let order = self.order(epoch);
        let n = order.len().max(1);
        self.plan(epoch)
            .positions(index)
            .map(|p| order[p % n])
            .collect()
    }

    fn build(&self, epoch: u64, index: usize) -> Result<Batch, Error> {
        let order = self.order(epoch);
        let positions = self.plan(epoch).positions(index);
        let first_position = positions.start;
        let indices: Vec<usize> = positions.map(|p| order[p % order.len().max(1)]).collect();
        let b = indices.len();
        let [h, w, c] = self.source.image_shape();
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
        let mut labels = Vec::with_capacity(b);
        let mut all_boxes = Vec::with_capacity(b);
        let mut sample_indices = Vec::with_capacity(b);
        SCRATCH.with(|cell| -> Result<(), Error> {
            let (pixels, scratch) = &mut *cell.borrow_mut();
            pixels.resize(per, 0);
            for (slot, &first) in indices.iter().enumerate() {
                let direct =
                    matches!(images, Images::U8(_)) && !chw && !self.options.augment.is_active();
                let position = first_position + slot;
                let mut attempt = 0;
                let (sample, mut data) = loop {
                    let sample = if attempt == 0 {
                        first
                    } else {
                        order[(position + attempt) % order.len()]
                    };
                    let loaded = match &mut images {
                        // Raw uint8, channels last, no augmentation: read straight into the batch.
                        Images::U8(buf) if direct => self
                            .source
                            .load(sample, &mut buf[slot * per..(slot + 1) * per]),
                        _ => self.source.load(sample, pixels),
                    };
                    match loaded {
                        Ok(data) => break (sample, data),
                        Err(e)
                            if self.options.on_error == OnError::Skip
                                && attempt < MAX_REPLACEMENTS
                                && attempt + 1 < order.len() =>
                        {
                            self.record_skip(epoch, sample, &e);
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                };
                sample_indices.push(sample as i64);
                if self.options.augment.is_active() {
                    let mut rng = Rng::keyed(&[self.options.seed, epoch, sample as u64]);
                    let target: &mut [u8] = pixels;
                    self.options.augment.apply(
                        &mut rng,
                        target,
                        scratch,
                        [h, w, c],
                        &mut data.boxes,
                        &mut data.box_labels,
                    );
                }
                match &mut images {
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
        })
    }
}

impl<S: Source + 'static> Sequence for Dataset<S> {
    type Batch = Batch;

    fn len(&self) -> usize {
        self.plan_from(0).batches()
    }

    fn len_of_epoch(&self, epoch: u64) -> usize {
        self.plan(epoch).batches()
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
