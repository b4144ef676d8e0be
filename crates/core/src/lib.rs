//! Shared types of stokehold.
//!
//! Every stage of stokehold speaks in these types: a [`Manifest`] is the
//! high-level representation of a dataset (its classes and, for each
//! [`Sample`], the image path, class, size, format and [`BoxAnn`] boxes);
//! a [`Finding`] is one problem met while building it; a [`Control`] lets a
//! caller watch progress and cancel long work from another thread.
//!
//! This crate links no C library and knows nothing of Python.
//!
//! ```
//! use stokehold_core::{BoxAnn, ImageFormat, Manifest, Sample};
//!
//! let mut manifest = Manifest::new(vec!["cat".into(), "dog".into()]);
//! manifest.samples.push(Sample {
//!     path: "/data/dog/1.jpg".into(),
//!     label: Some(1),
//!     width: 640,
//!     height: 480,
//!     format: ImageFormat::Jpeg,
//!     boxes: vec![BoxAnn::new([10.0, 20.0, 200.0, 300.0], 1)],
//! });
//! assert_eq!(manifest.class_name(manifest.samples[0].label), Some("dog"));
//!
//! // The JSON-lines form round-trips.
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("manifest.jsonl");
//! manifest.save(&path).unwrap();
//! let loaded = Manifest::load(&path).unwrap();
//! assert_eq!(loaded.samples, manifest.samples);
//! ```

mod control;
mod error;
mod finding;
pub mod fsutil;
mod jsonl;
mod manifest;
mod split;
mod util;
pub mod vocab;

pub use control::{
    cores, default_threads, max_threads, resolve_threads, Control, MAX_THREADS_PER_CORE,
    THREADS_ENV,
};
pub use error::Error;
pub use finding::{Finding, FindingKind};
pub use fsutil::Limits;
pub use jsonl::{ManifestFile, MANIFEST_FORMAT_VERSION};
pub use manifest::{BoxAnn, ImageFormat, Manifest, Sample, SampleSource, SourceFormat, SourceInfo};
pub use util::{panic_message, splitmix64};
