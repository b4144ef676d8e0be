//! Datasets in object storage: the options Python passes, and opening a
//! packed dataset wherever it is.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use stokehold_core::Control;
use stokehold_remote::RemoteOptions;
use stokehold_store::PackedDataset;

use crate::errors::Failure;

/// The remote options of `storage_options` (pairs of strings), `cache_dir`
/// and `cache_limit`; a bad value is an `InvalidArgumentError` naming it.
pub(crate) fn options(
    storage: Option<Vec<(String, String)>>,
    cache_dir: Option<PathBuf>,
    cache_limit: u64,
) -> PyResult<RemoteOptions> {
    let mut options = RemoteOptions {
        cache_dir,
        cache_limit,
        ..RemoteOptions::default()
    };
    for (key, value) in storage.unwrap_or_default() {
        options
            .set(&key, &value)
            .map_err(|e| PyErr::from(Failure::Store(e)))?;
    }
    Ok(options)
}

/// Opens a packed file, a dataset directory or an `s3://` dataset; a
/// Ctrl-C (`control` cancelled) stops the wait for the index.
pub(crate) fn open_packed(
    path: &Path,
    options: RemoteOptions,
    control: &Control,
) -> Result<PackedDataset, Failure> {
    let stop = || control.is_cancelled();
    stokehold_remote::open_dataset(
        path,
        options,
        stokehold_core::Limits::DEFAULT_MAX_SOURCE_BYTES,
        Some(&stop),
    )
    .map_err(|e| {
        if control.is_cancelled() {
            Failure::Interrupted
        } else {
            Failure::Store(e)
        }
    })
}
