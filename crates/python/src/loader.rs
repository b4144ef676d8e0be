//! The loader behind `stokehold.Dataset`: batches reach numpy without a copy.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use stokehold_core::vocab::parse_choice;
use stokehold_image::{DecodeOptions, Filter, Prepare, ResizePolicy};
use stokehold_loader::{
    Augment, Batch, Buckets, Buffer, Dataset, DatasetOptions, Dtype, Generator, Images, JitSource,
    Layout, Loader, LoaderOptions, LoaderState, OnError, Order, PackedSource, SampleData, Sequence,
    Shard, Source,
};

use crate::blocking::{run_blocking, run_detached};
use crate::errors::{guard, Failure};
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
    fn prefetch(&self, indices: &[usize]) {
        self.get().prefetch(indices)
    }
    fn sample_shape(&self, index: usize) -> [usize; 3] {
        self.get().sample_shape(index)
    }
    fn size_of(&self, index: usize) -> Option<(u32, u32)> {
        self.get().size_of(index)
    }
    fn load_window(
        &self,
        index: usize,
        out: &mut [u8],
        window: [f64; 4],
    ) -> Result<SampleData, stokehold_loader::Error> {
        self.get().load_window(index, out, window)
    }
    fn load_resized(
        &self,
        index: usize,
        out: &mut [u8],
        size: [usize; 2],
    ) -> Result<SampleData, stokehold_loader::Error> {
        self.get().load_resized(index, out, size)
    }
    fn fingerprint(&self) -> u64 {
        self.get().fingerprint()
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

fn batch_to_dict(py: Python<'_>, batch: Batch, chw: bool) -> PyResult<Py<PyDict>> {
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
    if let Some(masks) = batch.masks {
        let [_, a, b2, c] = batch.shape;
        let (h, w) = if chw { (b2, c) } else { (a, b2) };
        d.set_item("masks", PyArray1::from_vec(py, masks).reshape([b, h, w])?)?;
    }
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

#[pymethods]
impl NativeLoader {
    /// See `stokehold.Dataset`.
    #[new]
    #[pyo3(signature = (packed, manifest, size, resize, filter, channels, batch_size, shuffle, seed, drop_last,
        rank, world_size, shard, dtype, data_format, normalize, mean, std, hflip, random_resized_crop, one_hot,
        max_boxes, num_threads, prefetch, in_order, epoch, on_error, max_pixels, max_file_bytes,
        max_size=512, multiple=1, buckets=None, bucket_shapes=None, storage_options=None, cache_dir=None,
        cache_limit=0))]
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
        data_format: String,
        normalize: bool,
        mean: Option<Vec<f64>>,
        std: Option<Vec<f64>>,
        hflip: f64,
        random_resized_crop: Option<((f64, f64), (f64, f64))>,
        one_hot: bool,
        max_boxes: Option<usize>,
        num_threads: Option<usize>,
        prefetch: Option<usize>,
        in_order: bool,
        epoch: u64,
        on_error: String,
        max_pixels: u64,
        max_file_bytes: u64,
        max_size: u32,
        multiple: u32,
        buckets: Option<usize>,
        bucket_shapes: Option<Vec<(usize, usize)>>,
        storage_options: Option<Vec<(String, String)>>,
        cache_dir: Option<PathBuf>,
        cache_limit: u64,
    ) -> PyResult<NativeLoader> {
        let manifest = manifest.map(|m| m.inner.clone());
        let remote = crate::remote::options(storage_options, cache_dir, cache_limit)?;
        run_blocking(py, None, move |control| {
            let source = match (packed, manifest) {
                (Some(path), _) => AnySource::Packed(Box::new(PackedSource::from_dataset(
                    crate::remote::open_packed(&path, remote, control)?,
                ))),
                (None, Some(m)) => {
                    let resize = parse_choice::<ResizePolicy>("resize", &resize)?;
                    if resize == ResizePolicy::Fit && !(1..=16384).contains(&max_size) {
                        return Err(Failure::Argument(format!(
                            "max_size must be between 1 and 16384, got {max_size}"
                        )));
                    }
                    // Under `fit` each sample has its own size (`size` is unused).
                    let (h, w) = match (size, resize) {
                        (Some(s), _) => s,
                        (None, ResizePolicy::Fit) => (max_size, max_size),
                        (None, _) => {
                            return Err(Failure::Argument(
                                "a manifest source needs size=(height, width)".into(),
                            ))
                        }
                    };
                    if !(1..=16384).contains(&h) || !(1..=16384).contains(&w) {
                        return Err(Failure::Argument(format!(
                            "size ({h}, {w}) must be between 1 and 16384 on each side"
                        )));
                    }
                    if channels != 1 && channels != 3 {
                        return Err(Failure::Argument(format!(
                            "channels must be 1 or 3, got {channels}"
                        )));
                    }
                    let prepare = Prepare {
                        decode: DecodeOptions {
                            channels,
                            max_pixels,
                            ..DecodeOptions::default()
                        },
                        size: (h, w),
                        resize,
                        filter: parse_choice::<Filter>("filter", &filter)?,
                        fill: 0,
                        max_size,
                        multiple,
                    };
                    AnySource::Jit(JitSource::new(m, prepare, None).max_file_bytes(max_file_bytes))
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
                shard: parse_choice::<Shard>("shard", &shard)?,
                dtype: parse_choice::<Dtype>("dtype", &dtype)?,
                layout: parse_choice::<Layout>("data_format", &data_format)?,
                normalize,
                mean,
                std,
                augment: Augment {
                    hflip,
                    random_resized_crop,
                },
                one_hot,
                max_boxes,
                on_error: parse_choice::<OnError>("on_error", &on_error)?,
                buckets: match (buckets, bucket_shapes) {
                    (Some(_), Some(_)) => {
                        return Err(Failure::Argument(
                            "buckets: give a number of buckets or their shapes, not both".into(),
                        ))
                    }
                    (Some(k), None) => Some(Buckets::Auto(k)),
                    (None, Some(shapes)) => Some(Buckets::Shapes(
                        shapes.into_iter().map(|(h, w)| [h, w]).collect(),
                    )),
                    (None, None) => None,
                },
            };
            let seq = Arc::new(Dataset::new(source, options)?);
            let threads = stokehold_core::resolve_threads(num_threads, "num_threads")?;
            let prefetch = prefetch.unwrap_or(2 * threads);
            stokehold_loader::check_memory(seq.batch_bytes(), prefetch)?;
            let loader_options = LoaderOptions {
                threads,
                prefetch,
                order: if in_order {
                    Order::Ordered
                } else {
                    Order::Completion
                },
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

    fn __len__(&self) -> PyResult<usize> {
        let epoch = self.generator.state().map_err(Failure::from)?.epoch;
        Ok(self.seq.len_of_epoch(epoch))
    }

    /// Samples in this rank's share of an epoch.
    fn samples_per_epoch(&self) -> usize {
        self.seq.samples_per_epoch()
    }

    /// What decides the epochs' orders (data, shuffle, seed).
    fn order_fingerprint(&self) -> u64 {
        self.seq.order_fingerprint()
    }

    /// For a dataset in object storage: `(requests, bytes, retries,
    /// cache_hits)` of its reads so far.
    fn io_stats(&self) -> Option<(u64, u64, u64, u64)> {
        match self.seq.source() {
            AnySource::Packed(p) => p
                .reader()
                .remote_counters()
                .map(|c| (c[0], c[1], c[2], c[3])),
            AnySource::Jit(_) => None,
        }
    }

    /// Samples in the whole source.
    fn source_len(&self) -> usize {
        self.seq.source().len()
    }

    /// Positions of an epoch that `position` and `resume` count: its
    /// samples, or with buckets its batches.
    fn positions_per_epoch(&self) -> usize {
        self.seq.positions_per_epoch()
    }

    /// With buckets, the `(height, width)` of each bucket.
    #[getter]
    fn bucket_shapes(&self) -> Option<Vec<(usize, usize)>> {
        self.seq
            .bucket_shapes()
            .map(|s| s.iter().map(|&[h, w]| (h, w)).collect())
    }

    /// The sample index of each row of this rank's batches of epoch
    /// `epoch`, in batch order (no pixels are read).
    fn epoch_indices<'py>(&self, py: Python<'py>, epoch: u64) -> Bound<'py, PyArray1<i64>> {
        let rows: Vec<i64> = (0..self.seq.len_of_epoch(epoch))
            .flat_map(|k| self.seq.batch_samples(epoch, k))
            .map(|i| i as i64)
            .collect();
        PyArray1::from_vec(py, rows)
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
        guard(|| {
            // Usually the read-ahead has it: take it on this thread. Only a
            // batch still being made is waited for on a helper thread, while
            // this one watches for Ctrl-C; Ctrl-C stops the wait at once and
            // the batch stays for the next call.
            let ready = py.detach(|| self.generator.try_next_batch());
            let batch = match ready {
                Some(batch) => batch.map_err(|e| Failure::from(e).into_pyerr(py))?,
                None => run_blocking(py, None, |control| {
                    match self.generator.next_batch_until(&|| control.is_cancelled()) {
                        Some(batch) => Ok(batch?),
                        None => Err(Failure::Interrupted),
                    }
                })?,
            };
            batch_to_dict(py, batch, self.seq.options().layout == Layout::Nchw)
        })
    }

    /// Batch `index` of `epoch`, built now (random access). On Ctrl-C the
    /// call returns at once; the batch being built is dropped when done.
    fn batch(&self, py: Python<'_>, epoch: u64, index: usize) -> PyResult<Py<PyDict>> {
        guard(|| {
            if self.generator.is_closed() {
                return Err(Failure::from(stokehold_loader::Error::Closed).into_pyerr(py));
            }
            let seq = Arc::clone(&self.seq);
            let batch = run_detached(py, move || Ok(seq.batch(epoch, index)?))?;
            batch_to_dict(py, batch, self.seq.options().layout == Layout::Nchw)
        })
    }

    /// `(epoch, index, reason)` of the samples skipped under
    /// `on_error="skip"` (the most recent 10,000), and how many in all.
    fn skipped(&self) -> (Vec<(u64, usize, String)>, u64) {
        let (list, total) = self.seq.skipped();
        (
            list.into_iter()
                .map(|s| (s.epoch, s.index, s.reason))
                .collect(),
            total,
        )
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

    /// Samples of epoch `epoch`'s global order that the whole job has
    /// consumed once every rank has read `batches` of its batches.
    fn position(&self, epoch: u64, batches: usize) -> usize {
        self.seq.consumed(epoch, batches)
    }

    /// Resumes at `position` of epoch `epoch`'s global order: the rest of
    /// that epoch is cut for this dataset's ranks and batch size.
    fn resume(&self, epoch: u64, position: usize) -> PyResult<()> {
        // Already there (`set_epoch(e)` before each epoch, as torch's
        // samplers are driven): keep the batches read ahead for it.
        let here = self.generator.state().map_err(Failure::from)?;
        if position == 0
            && self.seq.resume_point().is_none()
            && (here.epoch, here.next_batch) == (epoch, 0)
        {
            return Ok(());
        }
        self.seq.resume_at(epoch, position).map_err(Failure::from)?;
        self.generator
            .restore(LoaderState {
                epoch,
                next_batch: 0,
                seed: self.seq.seed(),
                fingerprint: self.seq.fingerprint(),
            })
            .map_err(Failure::from)?;
        Ok(())
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
        run_blocking(py, None, |_| {
            self.generator.close();
            Ok::<_, Failure>(())
        })
    }
}
