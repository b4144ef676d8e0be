//! Python wrappers for the manifest, its samples, boxes and findings.

use std::path::PathBuf;

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use stokehold_core as core;
use stokehold_index::IndexOptions;

use crate::blocking::run_blocking;
use crate::errors::{guard, Failure};

/// One bounding box in source pixels.
#[pyclass(module = "stokehold._native", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Box {
    /// `(x_min, y_min, x_max, y_max)`.
    bbox: (f32, f32, f32, f32),
    /// Class index.
    label: u32,
    /// Class name.
    class_name: String,
    /// COCO `iscrowd`.
    iscrowd: bool,
    /// Pascal VOC `difficult`.
    difficult: bool,
}

#[pymethods]
impl Box {
    fn __repr__(&self) -> String {
        let (a, b, c, d) = self.bbox;
        format!(
            "Box(bbox=({a:?}, {b:?}, {c:?}, {d:?}), class_name={:?})",
            self.class_name
        )
    }
}

/// One image of the dataset.
#[pyclass(module = "stokehold._native", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Sample {
    /// Absolute path of the image file (a name that is not UTF-8 comes back
    /// as Python's `os.fsdecode` gives it, and round-trips exactly).
    path: std::ffi::OsString,
    /// Class index, or None.
    label: Option<u32>,
    /// Class name, or None.
    class_name: Option<String>,
    /// Width in pixels.
    width: u32,
    /// Height in pixels.
    height: u32,
    /// `"jpeg"`, `"png"`, …
    format: String,
    /// Boxes, in source pixels.
    boxes: Vec<Box>,
}

#[pymethods]
impl Sample {
    fn __repr__(&self) -> String {
        format!(
            "Sample(path={:?}, class_name={}, size={}x{}, format={:?}, boxes={})",
            self.path.to_string_lossy(),
            self.class_name
                .as_ref()
                .map_or("None".to_owned(), |c| format!("{c:?}")),
            self.width,
            self.height,
            self.format,
            self.boxes.len()
        )
    }
}

/// One problem met while indexing.
#[pyclass(module = "stokehold._native", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Finding {
    /// The kind, e.g. `"missing_file"`.
    kind: String,
    /// The file it concerns (as `os.fsdecode` gives it).
    path: std::ffi::OsString,
    /// Where inside an annotation file, or None.
    location: Option<String>,
    /// What went wrong.
    message: String,
    /// Whether the sample was left out (else it was repaired and kept).
    skipped: bool,
}

impl From<core::Finding> for Finding {
    fn from(f: core::Finding) -> Self {
        Finding {
            kind: f.kind.as_str().to_owned(),
            path: f.path.into_os_string(),
            location: f.location,
            message: f.message,
            skipped: f.skipped,
        }
    }
}

#[pymethods]
impl Finding {
    fn __repr__(&self) -> String {
        format!(
            "Finding(kind={:?}, path={:?}, message={:?})",
            self.kind,
            self.path.to_string_lossy(),
            self.message
        )
    }

    fn __str__(&self) -> String {
        let path = self.path.to_string_lossy();
        match &self.location {
            Some(loc) => format!("{path} ({loc}): {}: {}", self.kind, self.message),
            None => format!("{path}: {}: {}", self.kind, self.message),
        }
    }
}

/// A dataset's classes and samples (native part of `stokehold.Manifest`).
#[pyclass(module = "stokehold._native", frozen)]
pub(crate) struct Manifest {
    pub(crate) inner: core::Manifest,
}

#[pymethods]
impl Manifest {
    /// Reads a JSON-lines manifest; with `as_source`, the manifest file
    /// itself is recorded as its source (what a pack of it packs).
    #[staticmethod]
    #[pyo3(signature = (path, max_line_bytes, as_source=false))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        max_line_bytes: u64,
        as_source: bool,
    ) -> PyResult<Manifest> {
        let limits = core::Limits {
            max_line_bytes,
            ..core::Limits::default()
        };
        let inner = run_blocking(py, None, |_| {
            limits.check()?;
            let mut m = core::Manifest::load_with(&path, &limits)?;
            if as_source {
                m.source = Some(core::SourceInfo {
                    format: core::SourceFormat::Manifest,
                    path: std::path::absolute(&path).unwrap_or(path.clone()),
                });
            }
            Ok::<_, Failure>(m)
        })?;
        Ok(Manifest { inner })
    }

    /// Writes the JSON-lines form, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        run_blocking(py, None, |_| Ok::<_, Failure>(self.inner.save(&path)?))
    }

    fn __len__(&self) -> usize {
        self.inner.samples.len()
    }

    /// Class names; a label indexes this list.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.inner.classes.clone()
    }

    /// Problems met while indexing.
    #[getter]
    fn findings(&self) -> Vec<Finding> {
        self.inner
            .findings
            .iter()
            .cloned()
            .map(Finding::from)
            .collect()
    }

    /// `(format, path)` of the source, or None.
    #[getter]
    fn source(&self) -> Option<(String, String)> {
        self.inner.source.as_ref().map(|s| {
            (
                s.format.as_str().to_owned(),
                s.path.to_string_lossy().into_owned(),
            )
        })
    }

    /// Total number of boxes.
    #[getter]
    fn num_boxes(&self) -> usize {
        self.inner.num_boxes()
    }

    /// Samples per class.
    fn class_counts(&self) -> Vec<usize> {
        self.inner.class_counts()
    }

    /// The sample at `index` (0-based, no negative indices here).
    fn sample(&self, index: usize) -> PyResult<Sample> {
        guard(|| self.sample_at(index))
    }

    /// `(train, val)`: a deterministic split, stratified by class.
    fn split(&self, val: f64, seed: u64) -> PyResult<(Manifest, Manifest)> {
        let (train, val) = self.inner.split(val, seed).map_err(Failure::from)?;
        Ok((Manifest { inner: train }, Manifest { inner: val }))
    }

    /// One line: samples, classes, boxes, and what was skipped or repaired.
    fn summary(&self) -> String {
        self.inner.summary()
    }
}

impl Manifest {
    fn sample_at(&self, index: usize) -> PyResult<Sample> {
        let s = self.inner.samples.get(index).ok_or_else(|| {
            PyIndexError::new_err(format!(
                "sample {index} is out of range (0..{})",
                self.inner.samples.len()
            ))
        })?;
        let name = |l: u32| {
            self.inner
                .classes
                .get(l as usize)
                .cloned()
                .unwrap_or_default()
        };
        Ok(Sample {
            path: s.path.clone().into_os_string(),
            label: s.label,
            class_name: self.inner.class_name(s.label).map(str::to_owned),
            width: s.width,
            height: s.height,
            format: s.format.as_str().to_owned(),
            boxes: s
                .boxes
                .iter()
                .map(|b| Box {
                    bbox: (b.bbox[0], b.bbox[1], b.bbox[2], b.bbox[3]),
                    label: b.label,
                    class_name: name(b.label),
                    iscrowd: b.iscrowd,
                    difficult: b.difficult,
                })
                .collect(),
        })
    }
}

/// The limits every native call that reads files takes.
pub(crate) fn limits(
    max_pixels: u64,
    max_file_bytes: u64,
    max_source_bytes: u64,
    max_line_bytes: u64,
) -> core::Limits {
    core::Limits {
        max_pixels,
        max_file_bytes,
        max_source_bytes,
        max_line_bytes,
    }
}

/// Indexes `source` into a manifest (see `stokehold.index`). `format` is a
/// source format or None (detect); `progress(done, total)` is called every
/// 100 ms while images are probed.
// The arguments mirror the keyword arguments of `stokehold.index`.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (source, format, strict, classes, image_root, num_threads, max_pixels, max_file_bytes, max_source_bytes, max_line_bytes, progress))]
pub(crate) fn index(
    py: Python<'_>,
    source: PathBuf,
    format: Option<String>,
    strict: bool,
    classes: Option<Vec<String>>,
    image_root: Option<PathBuf>,
    num_threads: Option<usize>,
    max_pixels: u64,
    max_file_bytes: u64,
    max_source_bytes: u64,
    max_line_bytes: u64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<Manifest> {
    let inner = run_blocking(py, progress.as_ref(), |control| {
        let format = match format.as_deref() {
            None | Some("auto") => None,
            Some(f) => Some(core::vocab::parse_choice::<core::SourceFormat>(
                "format", f,
            )?),
        };
        let threads = core::resolve_threads(num_threads, "num_threads")?;
        let options = IndexOptions {
            format,
            strict,
            limits: limits(max_pixels, max_file_bytes, max_source_bytes, max_line_bytes),
            classes,
            image_root,
            threads: Some(threads),
        };
        Ok::<_, Failure>(stokehold_index::index(&source, &options, control)?)
    })?;
    Ok(Manifest { inner })
}
