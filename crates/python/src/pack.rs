//! Python wrappers for pack, inspect and preview.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use stokehold_image::{Filter, ResizePolicy};
use stokehold_pack::{PackOptions, PreviewOptions, StorageOption};
use stokehold_store::{Storage, StoreReader};

use crate::blocking::run_blocking;
use crate::errors::Failure;
use crate::manifest::{Finding, Manifest};

/// What a pack did (see `stokehold.pack`).
#[pyclass(module = "stokehold._native", frozen, get_all)]
pub(crate) struct PackReport {
    /// The file written.
    path: String,
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
    workers: usize,
}

#[pymethods]
impl PackReport {
    fn __repr__(&self) -> String {
        format!(
            "PackReport(path={:?}, num_samples={}, num_skipped={}, seconds={:.2})",
            self.path, self.num_samples, self.num_skipped, self.seconds
        )
    }
}

fn arg<T: std::str::FromStr<Err = String>>(value: &str) -> Result<T, Failure> {
    value.parse().map_err(Failure::Argument)
}

/// Packs `manifest` into `out` (see `stokehold.pack`).
// The arguments mirror the keyword arguments of `stokehold.pack`.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (manifest, out, size, resize, filter, channels, storage, quality, fill, workers, strict, force, max_pixels))]
pub(crate) fn pack(
    py: Python<'_>,
    manifest: &Manifest,
    out: PathBuf,
    size: (u32, u32),
    resize: String,
    filter: String,
    channels: u8,
    storage: String,
    quality: u8,
    fill: u8,
    workers: Option<usize>,
    strict: bool,
    force: bool,
    max_pixels: u64,
) -> PyResult<PackReport> {
    let report = run_blocking(py, |control| {
        let options = PackOptions {
            size,
            channels,
            resize: arg::<ResizePolicy>(&resize)?,
            filter: arg::<Filter>(&filter)?,
            fill,
            storage: match storage.as_str() {
                "raw" => StorageOption::Raw,
                "jpeg" => StorageOption::Jpeg(quality),
                "png" => StorageOption::Png,
                other => {
                    return Err(Failure::Argument(format!(
                        "storage must be raw, jpeg or png, got {other:?}"
                    )))
                }
            },
            workers,
            strict,
            force,
            max_pixels,
            ..PackOptions::default()
        };
        Ok(stokehold_pack::pack(
            &manifest.inner,
            &out,
            &options,
            control,
        )?)
    })?;
    Ok(PackReport {
        path: report.path.to_string_lossy().into_owned(),
        num_samples: report.num_samples,
        num_skipped: report.num_skipped,
        findings: report.findings.into_iter().map(Finding::from).collect(),
        mean: report.mean,
        std: report.std,
        class_counts: report.class_counts,
        seconds: report.seconds,
        file_bytes: report.file_bytes,
        workers: report.workers,
    })
}

/// Describes a packed file as a dict (see `stokehold.inspect`).
#[pyfunction]
pub(crate) fn inspect(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyDict>> {
    let (reader, bytes) = run_blocking(py, |_| {
        let reader = StoreReader::open(&path)?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok::<_, Failure>((reader, bytes))
    })?;
    let info = reader.info();
    let d = PyDict::new(py);
    d.set_item("path", path.to_string_lossy())?;
    d.set_item("format_version", info.format_version)?;
    d.set_item("num_samples", info.num_samples)?;
    d.set_item(
        "image_shape",
        (
            info.image_shape[0],
            info.image_shape[1],
            info.image_shape[2],
        ),
    )?;
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
#[pyo3(signature = (path, out, n=64, seed=0))]
pub(crate) fn preview(
    py: Python<'_>,
    path: PathBuf,
    out: PathBuf,
    n: usize,
    seed: u64,
) -> PyResult<Vec<usize>> {
    run_blocking(py, |_| {
        Ok::<_, Failure>(stokehold_pack::preview(
            &path,
            &out,
            &PreviewOptions { n, seed },
        )?)
    })
}
