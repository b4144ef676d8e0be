//! The stokehold loader: the part that keeps the accelerator busy.
//!
//! - [`Sequence`]: the contract: a number of batches, batch `i` of epoch
//!   `e`, and an epoch-end hook. Implement it for your own data, or use
//!   [`Dataset`], which serves fixed-shape [`Batch`]es from a [`Source`]: a
//!   packed file ([`PackedSource`]) or a manifest decoded just in time
//!   ([`JitSource`]).
//! - [`Loader`]: runs any [`Sequence`] on one persistent pool of worker
//!   threads, at most `prefetch` batches ahead, delivering in index order
//!   (or as batches complete), with epoch-end hooks that never race the
//!   workers, a resumable [`LoaderState`], and an endless [`Generator`].
//!
//! ```
//! use std::sync::Arc;
//! use stokehold_loader::{Error, Loader, LoaderOptions, Sequence};
//!
//! struct Squares;
//! impl Sequence for Squares {
//!     type Batch = Vec<u64>;
//!     fn len(&self) -> usize { 4 }
//!     fn batch(&self, epoch: u64, index: usize) -> Result<Vec<u64>, Error> {
//!         Ok(vec![epoch, (index * index) as u64])
//!     }
//! }
//!
//! let mut loader = Loader::new(Arc::new(Squares), LoaderOptions { threads: 2, ..Default::default() }).unwrap();
//! let epoch0: Vec<_> = loader.epoch().map(|b| b.unwrap()[1]).collect();
//! assert_eq!(epoch0, [0, 1, 4, 9]);
//! assert_eq!(loader.state().epoch, 1);
//! ```

mod buckets;
mod buffer;
mod dataset;
mod engine;
mod plan;
mod source;
mod transform;

pub use buckets::{BucketSet, Buckets};
pub use buffer::Buffer;
pub use dataset::{
    Batch, Dataset, DatasetOptions, Dtype, Images, Layout, OnError, Skipped, MAX_REPLACEMENTS,
};
pub use engine::{EpochIter, Generator, Loader, LoaderOptions, LoaderState, Order};
pub use plan::{permutation, Plan, Shard};
pub use source::{JitSource, PackedSource, SampleData, Source};
pub use transform::Augment;

/// Checks that `prefetch` batches of `batch_bytes` each (plus the one in
/// use and the one being built) fit in this machine's memory, so that an
/// impossible setting is a clear error, not the process killed for memory
/// later.
pub fn check_memory(batch_bytes: u64, prefetch: usize) -> Result<(), Error> {
    let Some(total) = physical_memory() else {
        return Ok(());
    };
    let need = batch_bytes.saturating_mul(prefetch as u64 + 2);
    if need > total {
        return Err(Error::InvalidArgument(format!(
            "{} batches of {:.1} MB (prefetch {prefetch}, plus the one in use and the one being built) need {:.1} GB, \
             more than this machine's {:.1} GB: lower batch_size, the image size or prefetch",
            prefetch + 2,
            batch_bytes as f64 / 1e6,
            need as f64 / 1e9,
            total as f64 / 1e9
        )));
    }
    Ok(())
}

/// Physical memory in bytes (`MemTotal` of `/proc/meminfo`), if known.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Errors of the loader. Each names the sample, batch or file concerned.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or decoding one sample failed.
    #[error("sample {index} ({path}): {reason}")]
    Sample {
        /// Sample index in the source.
        index: usize,
        /// Its source path (or the packed file).
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A worker panicked while building a batch.
    #[error("batch {batch} of epoch {epoch}: worker panicked: {message}")]
    Panic {
        /// Epoch.
        epoch: u64,
        /// Batch index.
        batch: usize,
        /// The panic message.
        message: String,
    },
    /// A batch index past the end of the epoch.
    #[error("batch {index} is out of range: the epoch has {len} batches")]
    OutOfRange {
        /// Index asked for.
        index: usize,
        /// Batches per epoch.
        len: usize,
    },
    /// An option or a restored state does not fit.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Opening a source failed.
    #[error("{0}")]
    Open(String),
    /// The loader was closed.
    #[error("the loader is closed")]
    Closed,
    /// An error of a user's own [`Sequence`].
    #[error("{0}")]
    User(String),
}

/// The contract every data source of the loader fulfils: a fixed number of
/// batches per epoch, batch `index` of epoch `epoch` on demand from any
/// thread, and a hook at each epoch's end.
pub trait Sequence: Send + Sync + 'static {
    /// What one batch is.
    type Batch: Send + 'static;

    /// Batches per epoch.
    fn len(&self) -> usize;

    /// Batches of epoch `epoch` (an epoch resumed part way has fewer).
    fn len_of_epoch(&self, _epoch: u64) -> usize {
        self.len()
    }

    /// Whether an epoch has no batch.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds batch `index` of epoch `epoch`. Must be a pure function of its
    /// arguments (and the sequence's own options) for runs to be
    /// reproducible; called from worker threads, possibly concurrently.
    fn batch(&self, epoch: u64, index: usize) -> Result<Self::Batch, Error>;

    /// Called after the last batch of `epoch` is delivered and before any
    /// batch of the next epoch is read (unless [`Sequence::independent_epochs`]).
    fn on_epoch_end(&self, _epoch: u64) {}

    /// Whether an epoch's batches depend only on its number, not on the
    /// epoch-end hook having run: then a [`Generator`] reads the next
    /// epoch's first batches ahead while the current epoch's last ones are
    /// still being made (the hook still runs between them, in order of
    /// delivery). False by default.
    fn independent_epochs(&self) -> bool {
        false
    }

    /// The seed of the order and augmentations, if the sequence has one.
    fn seed(&self) -> u64 {
        0
    }

    /// A hash of everything that decides the batches, stored in
    /// [`LoaderState`] so that a state is only restored into a loader that
    /// would produce the same sequence.
    fn fingerprint(&self) -> u64 {
        self.len() as u64
    }
}
