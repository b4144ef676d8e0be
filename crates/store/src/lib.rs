//! The stokehold packed file (format version 1): one HDF5 file that plain
//! h5py can read, documented in `docs/format.md`.
//!
//! [`StoreWriter`] writes it sample by sample, in order, to a temporary file
//! beside the destination; [`StoreReader`] opens it, resolves the byte
//! address of the raw pixel array once, and then reads samples with `pread`
//! from any number of threads, without taking libhdf5's global lock.
//!
//! This is the only crate that links libhdf5.
//!
//! ```
//! use stokehold_store::{Attrs, PackedSample, Storage, StoreReader, StoreWriter, WriterConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let dest = dir.path().join("tiny.h5");
//! let config = WriterConfig { image_shape: [2, 2, 3], storage: Storage::Raw, capacity: 1 };
//! let mut writer = StoreWriter::create(&dest, config).unwrap();
//! writer
//!     .push(&PackedSample { data: &[7; 12], label: Some(0), boxes: &[], box_labels: &[], path: "a.png", orig_size: [4, 4], source_index: 0 })
//!     .unwrap();
//! let attrs = Attrs { classes: vec!["a".into()], mean: vec![7.0; 3], std: vec![0.0; 3], ..Attrs::default() };
//! writer.finish(&attrs).unwrap().persist(&dest).unwrap();
//!
//! let reader = StoreReader::open(&dest).unwrap();
//! let mut pixels = vec![0; reader.sample_bytes()];
//! reader.read_raw(0, &mut pixels).unwrap();
//! assert_eq!(pixels, [7; 12]);
//! ```

mod error;
mod format;
mod reader;
mod writer;

pub use error::Error;
pub use format::{Attrs, Storage, FORMAT, FORMAT_VERSION};
pub use reader::{StoreInfo, StoreReader};
pub use writer::{PackedSample, StoreWriter, WriterConfig};
