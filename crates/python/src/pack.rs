//! Python wrappers for pack, inspect and preview.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use stokehold_core::vocab::parse_choice;
use stokehold_image::{Filter, ResizePolicy};
use stokehold_pack::{PackOptions, PreviewOptions, ShardOptions, StorageKind};
use stokehold_store::Storage;

use crate::blocking::run_blocking;
use crate::errors::Failure;
use crate::manifest::{limits, Finding, Manifest};

/// What a pack did (see `stokehold.pack`).
#[pyclass(module = "stokehold._native", frozen, get_all)]
pub(crate) struct PackReport {
    /// The file written, or the dataset directory.
    path: std::ffi::OsString,
    /// Shard files written (1 for a single file).
    num_shards: usize,
    /// Samples written.
    num_samples: usize,
    /// Samples of the manifest left out.
    num_skipped: usize,
    /// Problems met while packing.
    findings: Vec<Finding>,
    /// Per-channel mean of the stored pixels (0–255).
    mean: Vec<f64>,
    /// Per-channel standard deviation of the stored pixels (0–255).
    std: Vec<f64>,
    /// Samples per class.
    class_counts: Vec<u64>,
    /// Wall-clock seconds.
    seconds: f64,
    /// Bytes on disk.
    file_bytes: u64,
    /// Threads used.
    num_threads: usize,
}

#[pymethods]
impl PackReport {
    fn __repr__(&self) -> String {
        format!(
            "PackReport(path={:?}, num_samples={}, num_skipped={}, seconds={:.2})",
            self.path.to_string_lossy(),
            self.num_samples,
            self.num_skipped,
            self.seconds
        )
    }
}

/// Checks the output before anything is indexed or decoded. In object
/// storage (`s3://`), an existing dataset there (or part, with `part`) is
/// refused unless `force`; with `force` and `clear` it is removed.
#[pyfunction]
#[pyo3(signature = (out, force, sharded, part, storage_options=None, clear=false))]
pub(crate) fn check_output(
    py: Python<'_>,
    out: PathBuf,
    force: bool,
    sharded: bool,
    part: Option<(usize, usize)>,
    storage_options: Option<Vec<(String, String)>>,
    clear: bool,
) -> PyResult<()> {
    if let Some(url) = stokehold_remote::remote_url(&out) {
        let options = crate::remote::options(storage_options, None, 0)?;
        return run_blocking(py, None, |_| {
            let remote = stokehold_remote::Remote::connect(url, options)?;
            Ok::<_, Failure>(stokehold_remote::clear_output(&remote, part, force, clear)?)
        });
    }
    run_blocking(py, None, |_| {
        if sharded {
            let options = PackOptions {
                force,
                part,
                shards: Some(ShardOptions::default()),
                ..PackOptions::default()
            };
            Ok::<_, Failure>(stokehold_pack::check_output_dir(&out, &options)?)
        } else {
            Ok(stokehold_pack::check_output(&out, force)?)
        }
    })
}

/// Checks every part of a dataset directory and writes its index; returns
/// `(samples, shards, mean, std)`.
#[pyfunction]
#[pyo3(signature = (dir, storage_options=None))]
pub(crate) fn commit(
    py: Python<'_>,
    dir: PathBuf,
    storage_options: Option<Vec<(String, String)>>,
) -> PyResult<(usize, usize, Vec<f64>, Vec<f64>)> {
    let remote = crate::remote::options(storage_options, None, 0)?;
    let max = stokehold_core::Limits::DEFAULT_MAX_SOURCE_BYTES;
    let index = run_blocking(py, None, |_| match stokehold_remote::remote_url(&dir) {
        Some(url) => Ok::<_, Failure>(stokehold_remote::commit_remote(url, remote, max)?),
        None => Ok(stokehold_pack::commit(&dir, max)?),
    })?;
    Ok((index.num_samples, index.shards.len(), index.mean, index.std))
}

/// Packs `manifest` (a `Manifest`, or the path of a manifest file, read
/// line by line as it is packed, recorded as the source unless
/// `manifest_as_source` is false: then its header's source is) into `out`
/// (see `stokehold.pack`); `progress(done, total)` is called every 100 ms.
// The arguments mirror the keyword arguments of `stokehold.pack`.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (manifest, out, size, resize, filter, channels, storage, quality, fill, num_threads, strict, force, max_pixels, max_file_bytes, shard_size, samples_per_shard, part, progress, max_size=512, multiple=1, storage_options=None, manifest_as_source=true))]
pub(crate) fn pack(
    py: Python<'_>,
    manifest: &Bound<'_, PyAny>,
    out: PathBuf,
    size: (u32, u32),
    resize: String,
    filter: String,
    channels: u8,
    storage: String,
    quality: u8,
    fill: u8,
    num_threads: Option<usize>,
    strict: bool,
    force: bool,
    max_pixels: u64,
    max_file_bytes: u64,
    shard_size: Option<u64>,
    samples_per_shard: Option<usize>,
    part: Option<(usize, usize)>,
    progress: Option<Bound<'_, PyAny>>,
    max_size: u32,
    multiple: u32,
    storage_options: Option<Vec<(String, String)>>,
    manifest_as_source: bool,
) -> PyResult<PackReport> {
    let remote = crate::remote::options(storage_options, None, 0)?;
    let bound = manifest.cast::<Manifest>().ok();
    let in_memory: Option<&stokehold_core::Manifest> = bound.as_ref().map(|m| &m.get().inner);
    let file_path: Option<PathBuf> = match &in_memory {
        Some(_) => None,
        None => Some(manifest.extract()?),
    };
    let report = run_blocking(py, progress.as_ref(), |control| {
        let threads = stokehold_core::resolve_threads(num_threads, "num_threads")?;
        let defaults = stokehold_core::Limits::default();
        let options = PackOptions {
            size,
            channels,
            resize: parse_choice::<ResizePolicy>("resize", &resize)?,
            max_size,
            multiple,
            filter: parse_choice::<Filter>("filter", &filter)?,
            fill,
            storage: parse_choice::<StorageKind>("storage", &storage)?.with_quality(quality),
            threads: Some(threads),
            strict,
            force,
            limits: limits(
                max_pixels,
                max_file_bytes,
                defaults.max_source_bytes,
                defaults.max_line_bytes,
            ),
            shards: (shard_size.is_some() || samples_per_shard.is_some()).then_some(ShardOptions {
                samples: samples_per_shard,
                bytes: shard_size,
            }),
            part,
            ..PackOptions::default()
        };
        let file;
        let samples: &dyn stokehold_core::SampleSource = match (&in_memory, &file_path) {
            (Some(m), _) => *m,
            (None, Some(path)) => {
                file =
                    stokehold_core::ManifestFile::open(path, &options.limits, manifest_as_source)?;
                &file
            }
            (None, None) => unreachable!("one of the two"),
        };
        match stokehold_remote::remote_url(&out) {
            Some(url) => Ok::<_, Failure>(stokehold_remote::pack_to_remote(
                samples, url, &options, control, remote,
            )?),
            None => Ok(stokehold_pack::pack(samples, &out, &options, control)?),
        }
    })?;
    Ok(PackReport {
        path: report.path.into_os_string(),
        num_shards: report.shards,
        num_samples: report.num_samples,
        num_skipped: report.num_skipped,
        findings: report.findings.into_iter().map(Finding::from).collect(),
        mean: report.mean,
        std: report.std,
        class_counts: report.class_counts,
        seconds: report.seconds,
        file_bytes: report.file_bytes,
        num_threads: report.threads,
    })
}

/// Describes a packed file as a dict (see `stokehold.inspect`).
#[pyfunction]
#[pyo3(signature = (path, storage_options=None))]
pub(crate) fn inspect(
    py: Python<'_>,
    path: PathBuf,
    storage_options: Option<Vec<(String, String)>>,
) -> PyResult<Py<PyDict>> {
    let remote = crate::remote::options(storage_options, None, 0)?;
    let (reader, bytes) = run_blocking(py, None, |control| {
        let reader = crate::remote::open_packed(&path, remote, control)?;
        let bytes = reader.disk_bytes();
        Ok::<_, Failure>((reader, bytes))
    })?;
    let info = reader.info();
    let d = PyDict::new(py);
    d.set_item("path", path.as_os_str())?;
    d.set_item("format_version", info.format_version)?;
    d.set_item("num_samples", info.num_samples)?;
    d.set_item("num_shards", reader.num_shards())?;
    // `fit`: each sample its own shape, height and width None.
    let [h, w, c] = info.image_shape;
    let side = |v: usize| (v > 0).then_some(v);
    d.set_item("image_shape", (side(h), side(w), c))?;
    d.set_item("storage", info.storage.kind())?;
    d.set_item(
        "codec",
        match &info.storage {
            Storage::Encoded { codec } => Some(codec.clone()),
            Storage::Raw => None,
        },
    )?;
    d.set_item("quality", info.attrs.quality)?;
    d.set_item("resize", &info.attrs.resize)?;
    d.set_item("filter", &info.attrs.filter)?;
    d.set_item("fill", info.attrs.fill)?;
    d.set_item("mean", &info.attrs.mean)?;
    d.set_item("std", &info.attrs.std)?;
    d.set_item("classes", &info.attrs.classes)?;
    d.set_item("class_counts", &info.class_counts)?;
    d.set_item("num_boxes", reader.num_boxes())?;
    d.set_item("source", &info.attrs.source)?;
    d.set_item("created_by", &info.created_by)?;
    d.set_item("file_bytes", bytes)?;
    Ok(d.unbind())
}

/// Draws a grid of packed samples into a PNG (see `stokehold.preview`).
#[pyfunction]
#[pyo3(signature = (path, out, n=64, seed=0, storage_options=None))]
pub(crate) fn preview(
    py: Python<'_>,
    path: PathBuf,
    out: PathBuf,
    n: usize,
    seed: u64,
    storage_options: Option<Vec<(String, String)>>,
) -> PyResult<Vec<usize>> {
    let remote = crate::remote::options(storage_options, None, 0)?;
    run_blocking(py, None, |control| {
        let reader = crate::remote::open_packed(&path, remote, control)?;
        Ok::<_, Failure>(stokehold_pack::preview_dataset(
            &reader,
            &out,
            &PreviewOptions { n, seed },
        )?)
    })
}
