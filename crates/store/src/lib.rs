//! The stokehold packed file (format version 2; version 1 is still read): one HDF5 file that plain
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
//!     .push(&PackedSample {
//!         data: &[7; 12], shape: [2, 2, 3], label: Some(0), boxes: &[], box_labels: &[],
//!         path: "a.png".as_ref(), orig_size: [4, 4], source_index: 0,
//!     })
//!     .unwrap();
//! writer.add_pixels(&[7; 12]);
//! let attrs = Attrs { classes: vec!["a".into()], ..Attrs::default() };
//! let (tmp, sums) = writer.finish(&attrs).unwrap();
//! tmp.persist(&dest).unwrap();
//! assert_eq!(sums.mean_std().0, [7.0; 3]);
//!
//! let reader = StoreReader::open(&dest).unwrap();
//! let mut pixels = vec![0; reader.sample_bytes()];
//! reader.read_raw(0, &mut pixels).unwrap();
//! assert_eq!(pixels, [7; 12]);
//! ```

mod dataset;
mod error;
mod format;
pub mod index;
mod reader;
mod writer;

pub use dataset::{PackedDataset, RangeReader};
pub use error::{Error, RemoteKind};
pub use format::{Attrs, PixelSums, Storage, FORMAT, FORMAT_VERSION};
pub use index::{
    commit, DatasetIndex, DatasetSpec, PartRecord, ShardEntry, ShardSpill, INDEX_FILE,
};
pub use reader::{StoreInfo, StoreReader};
pub use writer::{check_class_names, PackedSample, StoreWriter, WriterConfig};
