//! Packs a dataset into one HDF5 file: decode, orient, resize (boxes
//! follow), compute normalization statistics, write in manifest order.
//!
//! [`pack`] runs decode and resize on a pool of threads with a bounded
//! window of samples in flight, writes them in order to a temporary file
//! beside the destination, and renames it into place only when everything
//! succeeded. [`preview`] draws a grid of packed samples with their classes
//! and boxes.
//!
//! ```no_run
//! use stokehold_core::{Control, Manifest};
//! use stokehold_pack::{pack, PackOptions};
//!
//! let manifest = Manifest::load("data/shapes/manifest.jsonl".as_ref()).unwrap();
//! let report = pack(&manifest, "data/shapes.h5".as_ref(), &PackOptions::default(), &Control::new()).unwrap();
//! println!("{} samples, mean {:?}", report.num_samples, report.mean);
//! ```

mod options;
mod pipeline;
mod preview;
mod process;
mod sink;

use std::path::PathBuf;

pub use options::{PackOptions, PackReport, ShardOptions, StorageKind, StorageOption};
pub use pipeline::{check_output, check_output_dir, pack, pack_with};
pub use preview::{preview, preview_dataset, PreviewOptions};
pub use sink::Upload;
use stokehold_core::Finding;
pub use stokehold_store::commit;

/// What can stop a pack as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The destination exists and `force` was not given.
    #[error("{}: already exists (use --force / force=True to replace it)", path.display())]
    Exists {
        /// The destination.
        path: PathBuf,
    },
    /// Strict mode and a sample failed.
    #[error("strict mode: {finding}")]
    Strict {
        /// The first failure.
        finding: Finding,
    },
    /// No sample could be packed.
    #[error("no sample could be packed ({} skipped); nothing written", findings.len())]
    Empty {
        /// Why each sample was skipped.
        findings: Vec<Finding>,
    },
    /// An option is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Cancelled through the run's control.
    #[error("cancelled; nothing written")]
    Cancelled,
    /// Writing or reading the packed file failed (disk full, bad file…).
    #[error(transparent)]
    Store(#[from] stokehold_store::Error),
    /// Decoding an image failed outside a sample's own error policy.
    #[error(transparent)]
    Image(#[from] stokehold_image::Error),
    /// Writing the preview failed.
    #[error("{}: {message}", path.display())]
    Output {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
