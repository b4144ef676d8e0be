//! The loader behind `stokehold.Dataset`: batches reach numpy without a copy.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use stokehold_image::{DecodeOptions, Filter, Prepare, ResizePolicy};
use stokehold_loader::{
    Augment, Batch, Buffer, Dataset, DatasetOptions, Dtype, Generator, Images, JitSource, Layout,
    Loader, LoaderOptions, LoaderState, Order, PackedSource, SampleData, Sequence, Shard, Source,
};

use crate::blocking::run_blocking;
use crate::errors::Failure;
use crate::manifest::Manifest;

/// A packed file or a manifest decoded just in time.
enum AnySource {
    Packed(Box<PackedSource>),
    Jit(JitSource),
}

impl AnySource {
    fn get(&self) -> &dyn Source {
        match self {
            AnySource::Packed(s) => s.as_ref(),
            AnySource::Jit(s) => s,
        }
    }
}

impl Source for AnySource {
    fn len(&self) -> usize {
        self.get().len()
    }
    fn image_shape(&self) -> [usize; 3] {
        self.get().image_shape()
    }
    fn classes(&self) -> &[String] {
        self.get().classes()
    }
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.get().stats()
    }
    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, stokehold_loader::Error> {
        self.get().load(index, out)
    }
}

type Seq = Dataset<AnySource>;

/// Owns a batch's pixel buffer while numpy arrays view it; dropping the last
/// view returns the buffer to the loader's pool.
#[pyclass(module = "stokehold._native", frozen)]
pub(crate) struct PixelBuffer {
    data: Pixels,
    shape: [usize; 4],
}

enum Pixels {
    F32(Buffer<f32>),
    U8(Buffer<u8>),
}

fn pixels_to_numpy<'py>(
    py: Python<'py>,
    images: Images,
    shape: [usize; 4],
) -> PyResult<Bound<'py, PyAny>> {
    let data = match images {
        Images::F32(b) => Pixels::F32(b),
        Images::U8(b) => Pixels::U8(b),
    };
    let owner = Bound::new(py, PixelBuffer { data, shape })?;
    let this = owner.get();
    let dim = ndarray::IxDyn(&this.shape);
    let bad = |e: ndarray::ShapeError| pyo3::exceptions::PyValueError::new_err(e.to_string());
    // SAFETY: the array views memory owned by `owner`, which becomes the
    // array's base object, so it lives as long as the array. The buffer is
    // never reallocated or moved while `owner` exists: `PixelBuffer` is
    // frozen and exposes no way to touch it.
    #[allow(unsafe_code)]
    let array = match &this.data {
        Pixels::F32(b) => {
            let view = ndarray::ArrayView::from_shape(dim, &b[..]).map_err(bad)?;
            unsafe { PyArray::borrow_from_array(&view, owner.clone().into_any()) }.into_any()
        }
        Pixels::U8(b) => {
            let view = ndarray::ArrayView::from_shape(dim, &b[..]).map_err(bad)?;
            unsafe { PyArray::borrow_from_array(&view, owner.clone().into_any()) }.into_any()
        }
    };
    Ok(array)
}

fn batch_to_dict(py: Python<'_>, batch: Batch) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    let b = batch.shape[0];
    d.set_item("images", pixels_to_numpy(py, batch.images, batch.shape)?)?;
    d.set_item("labels", PyArray1::from_vec(py, batch.labels))?;
    if let Some(one_hot) = batch.one_hot {
        let k = one_hot.len() / b.max(1);
        d.set_item("one_hot", PyArray1::from_vec(py, one_hot).reshape([b, k])?)?;
    }
    let m = batch.max_boxes;
    d.set_item(
        "boxes",
        PyArray1::from_vec(py, batch.boxes).reshape([b, m, 4])?,
    )?;
    d.set_item(
        "box_labels",
        PyArray1::from_vec(py, batch.box_labels).reshape([b, m])?,
    )?;
    d.set_item("box_counts", PyArray1::from_vec(py, batch.box_counts))?;
    d.set_item("indices", PyArray1::from_vec(py, batch.sample_indices))?;
    d.set_item("epoch", batch.epoch)?;
    d.set_item("batch", batch.index)?;
    Ok(d.unbind())
}

/// The native loader of one `stokehold.Dataset`.
///
/// A forked child inherits a copy of it without its worker threads (and
/// perhaps with a lock that one of them held): the child must not join
/// those threads or close those handles, so a copy dropped in another
/// process than its maker's is leaked instead (one more reference that is
/// never released). Python makes a new loader in the child
/// (`Dataset._native`).
#[pyclass(module = "stokehold._native", frozen)]
pub(crate) struct NativeLoader {
    seq: Arc<Seq>,
    generator: Arc<Generator<Seq>>,
    pid: u32,
}

impl NativeLoader {
    fn in_maker_process(&self) -> bool {
        std::process::id() == self.pid
    }
}

impl Drop for NativeLoader {
    fn drop(&mut self) {
        if !self.in_maker_process() {
            std::mem::forget(Arc::clone(&self.seq));
            std::mem::forget(Arc::clone(&self.generator));
        }
    }
}

fn parse<T>(name: &str, value: &str, table: &[(&str, T)]) -> Result<T, Failure>
where
    T: Copy,
{
    table
        .iter()
        .find(|(k, _)| *k == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let allowed: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
            Failure::Argument(format!(
                "{name} must be one of {}, got {value:?}",
                allowed.join(", ")
            ))
        })
}

#[pymethods]
impl NativeLoader {
    /// See `stokehold.Dataset`.
    #[new]
    #[pyo3(signature = (packed, manifest, size, resize, filter, channels, batch_size, shuffle, seed, drop_last,
        rank, world_size, shard, dtype, layout, normalize, mean, std, hflip, random_resized_crop, one_hot,
        max_boxes, workers, prefetch, order, epoch))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        packed: Option<PathBuf>,
        manifest: Option<PyRef<'_, Manifest>>,
        size: Option<(u32, u32)>,
        resize: String,
        filter: String,
        channels: u8,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        drop_last: bool,
        rank: usize,
        world_size: usize,
        shard: String,
        dtype: String,
        layout: String,
        normalize: bool,
        mean: Option<Vec<f64>>,
        std: Option<Vec<f64>>,
        hflip: f64,
        random_resized_crop: Option<((f64, f64), (f64, f64))>,
        one_hot: bool,
        max_boxes: Option<usize>,
        workers: Option<usize>,
        prefetch: Option<usize>,
        order: String,
        epoch: u64,
    ) -> PyResult<NativeLoader> {
        let manifest = manifest.map(|m| m.inner.clone());
        run_blocking(py, move |_| {
            let source = match (packed, manifest) {
                (Some(path), _) => AnySource::Packed(Box::new(PackedSource::open(&path)?)),
                (None, Some(m)) => {
                    let (h, w) = size.ok_or_else(|| {
                        Failure::Argument("a manifest source needs size=(height, width)".into())
                    })?;
                    let prepare = Prepare {
                        decode: DecodeOptions {
                            channels,
                            ..DecodeOptions::default()
                        },
                        size: (h, w),
                        resize: resize.parse::<ResizePolicy>().map_err(Failure::Argument)?,
                        filter: filter.parse::<Filter>().map_err(Failure::Argument)?,
                        fill: 0,
                    };
                    AnySource::Jit(JitSource::new(m, prepare, None))
                }
                (None, None) => return Err(Failure::Argument("no source".into())),
            };
            let options = DatasetOptions {
                batch_size,
                shuffle,
                seed,
                drop_last,
                rank,
                world_size,
                shard: parse(
                    "shard",
                    &shard,
                    &[("pad", Shard::Pad), ("drop", Shard::Drop)],
                )?,
                dtype: parse(
                    "dtype",
                    &dtype,
                    &[("float32", Dtype::F32), ("uint8", Dtype::U8)],
                )?,
                layout: parse(
                    "layout",
                    &layout,
                    &[
                        ("channels_last", Layout::Nhwc),
                        ("channels_first", Layout::Nchw),
                    ],
                )?,
                normalize,
                mean,
                std,
                augment: Augment {
                    hflip,
                    random_resized_crop,
                },
                one_hot,
                max_boxes,
            };
            let seq = Arc::new(Dataset::new(source, options)?);
            let workers = workers
                .unwrap_or_else(stokehold_core::default_threads)
                .max(1);
            let loader_options = LoaderOptions {
                workers,
                prefetch: prefetch.unwrap_or(2 * workers),
                order: parse(
                    "order",
                    &order,
                    &[
                        ("ordered", Order::Ordered),
                        ("completion", Order::Completion),
                    ],
                )?,
                epoch,
            };
            let loader = Loader::new(Arc::clone(&seq), loader_options)?;
            Ok(NativeLoader {
                seq,
                generator: Arc::new(loader.generator()),
                pid: std::process::id(),
            })
        })
    }

    fn __len__(&self) -> usize {
        Sequence::len(&*self.seq)
    }

    /// Samples in this rank's share of an epoch.
    fn samples_per_epoch(&self) -> usize {
        self.seq.samples_per_epoch()
    }

    /// Class names.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.seq.source().classes().to_vec()
    }

    /// `(height, width, channels)` of every image.
    #[getter]
    fn image_shape(&self) -> (usize, usize, usize) {
        let [h, w, c] = self.seq.source().image_shape();
        (h, w, c)
    }

    /// `(mean, std)` per channel (0–255) of the source, when known.
    #[getter]
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.seq.source().stats()
    }

    /// The next batch in loader order (cycling epochs).
    fn next_batch(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        // Usually the read-ahead has it: take it on this thread. Only a
        // batch still being made is waited for on a helper thread, while
        // this one watches for Ctrl-C.
        let ready = py.detach(|| self.generator.try_next_batch());
        let batch = match ready {
            Some(batch) => batch.map_err(|e| Failure::from(e).into_pyerr(py))?,
            None => run_blocking(py, |_| Ok::<_, Failure>(self.generator.next_batch()?))?,
        };
        batch_to_dict(py, batch)
    }

    /// Batch `index` of `epoch`, built on the calling thread (random access).
    fn batch(&self, py: Python<'_>, epoch: u64, index: usize) -> PyResult<Py<PyDict>> {
        let batch = run_blocking(py, |_| Ok::<_, Failure>(self.seq.batch(epoch, index)?))?;
        batch_to_dict(py, batch)
    }

    /// Ends the current epoch if any of it was consumed; a no-op right
    /// after an epoch ended by itself.
    fn end_epoch(&self) -> PyResult<()> {
        Ok(self.generator.end_epoch().map_err(Failure::from)?)
    }

    /// `(epoch, next_batch, seed, fingerprint)`.
    fn state(&self) -> PyResult<(u64, usize, u64, u64)> {
        let s = self.generator.state().map_err(Failure::from)?;
        Ok((s.epoch, s.next_batch, s.seed, s.fingerprint))
    }

    /// Resumes at a state from `state()`.
    fn restore(&self, state: (u64, usize, u64, u64)) -> PyResult<()> {
        let (epoch, next_batch, seed, fingerprint) = state;
        self.generator
            .restore(LoaderState {
                epoch,
                next_batch,
                seed,
                fingerprint,
            })
            .map_err(Failure::from)?;
        Ok(())
    }

    /// Stops the workers (in the process that made the loader; a forked
    /// copy has none to stop).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if !self.in_maker_process() {
            return Ok(());
        }
        run_blocking(py, |_| {
            self.generator.close();
            Ok::<_, Failure>(())
        })
    }
}
