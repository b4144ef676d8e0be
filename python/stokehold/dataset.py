"""``stokehold.Dataset``: fixed-shape batches from a packed file or a manifest.

The batches come from Rust worker threads that run ahead of the consumer
(at most ``prefetch`` batches), in a deterministic order, every sample of
this rank's share exactly once per epoch. A ``Dataset`` is a Keras 3
``PyDataset`` when Keras is installed (:mod:`stokehold.keras`), an iterable
of numpy batches always, and has adapters for PyTorch (:meth:`Dataset.torch`,
:mod:`stokehold.torch`) and JAX (:mod:`stokehold.jax`). This module holds
no framework code.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _checks, _native
from .errors import InvalidArgumentError, LoaderClosedError, SampleIndexError
from .manifest import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, Manifest, PathLike, index

__all__ = ["Dataset", "Outputs", "SkippedSample", "reorder"]

#: A batch structure: a name, or a tuple / list / dict of structures.
Outputs = Union[str, Tuple[Any, ...], Mapping[str, Any]]

_NAMES = ("images", "labels", "one_hot", "boxes", "box_labels", "box_counts", "indices", "masks")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class SkippedSample(NamedTuple):
    """A sample replaced in its batch under ``on_error="skip"``."""

    epoch: int
    sample: int
    reason: str


def _is_packed(source: PathLike) -> bool:
    """A packed file (HDF5 by its first bytes, or by its name: a damaged
    ``.h5`` is then refused as a packed file, not parsed as a CSV), or a
    dataset directory of shards (its ``dataset.json``, or parts waiting
    for ``commit``)."""
    path = os.fspath(source)
    if _checks.is_remote(path):
        return True
    if os.path.splitext(path)[1].lower() in (".h5", ".hdf5") or os.path.basename(path) == "dataset.json":
        return True
    if os.path.isdir(path):
        names = os.listdir(path)
        return "dataset.json" in names or any(n.startswith("part-") and "-of-" in n for n in names)
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(8) == _HDF5_MAGIC


def _structure(outputs: Outputs, batch: Dict[str, Any]) -> Any:
    if isinstance(outputs, str):
        return batch[outputs]
    if isinstance(outputs, Mapping):
        return {k: _structure(v, batch) for k, v in outputs.items()}
    return tuple(_structure(o, batch) for o in outputs)


def _check_outputs(outputs: Outputs, one_hot: bool, buckets: bool) -> None:
    if isinstance(outputs, str):
        if outputs not in _NAMES:
            raise InvalidArgumentError(f"outputs: unknown output {outputs!r}; a batch has {', '.join(_NAMES)}")
        if outputs == "one_hot" and not one_hot:
            raise InvalidArgumentError("outputs: 'one_hot' needs one_hot=True")
        if outputs == "masks" and not buckets:
            raise InvalidArgumentError("outputs: 'masks' (padding masks) needs buckets=")
    elif isinstance(outputs, Mapping):
        for v in outputs.values():
            _check_outputs(v, one_hot, buckets)
    elif isinstance(outputs, (tuple, list)):
        for o in outputs:
            _check_outputs(o, one_hot, buckets)
    else:
        raise InvalidArgumentError(f"outputs must be a name, or a tuple, list or dict of them; got {outputs!r}")


def _buckets(buckets: Any) -> Tuple[Optional[int], Optional[List[Tuple[int, int]]]]:
    """``buckets=`` as (a number of buckets, or their shapes)."""
    if buckets is None:
        return None, None
    if isinstance(buckets, int) and not isinstance(buckets, bool):
        return _checks.integer("buckets", buckets, 1, 256), None
    try:
        shapes = [(int(h), int(w)) for h, w in buckets]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"buckets must be a number of buckets (1 to 256) or a list of (height, width) shapes; got {buckets!r}"
        ) from None
    for h, w in shapes:
        if not (1 <= h <= 16384 and 1 <= w <= 16384):
            raise InvalidArgumentError(f"buckets: shape ({h}, {w}) must be between 1 and 16384 on each side")
    if not 1 <= len(shapes) <= 256:
        raise InvalidArgumentError(f"buckets: give 1 to 256 shapes, got {len(shapes)}")
    return None, shapes


def reorder(rows: Any, indices: Any) -> Any:
    """Rows (e.g. ``model.predict`` output, one row per sample in batch
    order) put back in sample order: row ``k`` of the result is sample
    ``k``'s. ``indices`` is :meth:`Dataset.indices` (or the ``"indices"``
    output of the batches, concatenated). A sample that came twice (ranks
    padded with ``shard="pad"``) keeps its first row; a sample that never
    came is an error naming it."""
    import numpy as np

    rows = np.asarray(rows)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or len(rows) != len(indices):
        raise InvalidArgumentError(
            f"reorder: {len(rows)} rows but {indices.shape} indices; give one index per row"
        )
    n = int(indices.max()) + 1 if len(indices) else 0
    first = np.full(n, -1, dtype=np.int64)
    # Reversed, so that the first row of a repeated sample is the one kept.
    first[indices[::-1]] = np.arange(len(indices) - 1, -1, -1)
    missing = np.flatnonzero(first < 0)
    if len(missing):
        raise InvalidArgumentError(
            f"reorder: sample {int(missing[0])} has no row ({len(missing)} samples missing): "
            "give the rows of every rank, or of one rank with world_size=1"
        )
    return rows[first]


def _crop_ranges(rrc: Any) -> Optional[Tuple[Tuple[float, float], Tuple[float, float]]]:
    if rrc is None or rrc is False:
        return None
    if rrc is True:
        return ((0.08, 1.0), (3 / 4, 4 / 3))
    try:
        (s0, s1), (r0, r1) = rrc
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"augment random_resized_crop must be True or ((scale_low, scale_high), (ratio_low, ratio_high)); got {rrc!r}"
        ) from None
    name = "augment random_resized_crop"
    return (
        (_checks.number(f"{name} scale", s0), _checks.number(f"{name} scale", s1)),
        (_checks.number(f"{name} ratio", r0), _checks.number(f"{name} ratio", r1)),
    )


class Dataset:
    """Batches from a packed file (the fast path) or a manifest (decoded just in time).

    ``source``: a file written by :func:`stokehold.pack`, or a
    :class:`Manifest` / anything :func:`stokehold.index` accepts, decoded and
    resized in the workers to ``size=(height, width)`` with the same code as
    ``pack`` (``resize``, ``filter``, ``channels``; ``mean=``/``std=`` to
    normalize). ``size``, ``resize``, ``filter`` and ``channels`` belong to
    the just-in-time path: a packed file already has its shape.

    Each item is the ``outputs`` structure of named arrays: ``"images"``
    (``(B, H, W, C)`` float32 normalized with the file's mean/std, or uint8
    with ``dtype="uint8"``; ``(B, C, H, W)`` with
    ``data_format="channels_first"``), ``"labels"`` (int64, -1 for a sample
    without a class), ``"one_hot"`` (float32, with ``one_hot=True``),
    ``"boxes"`` (``(B, K, 4)`` float32, -1 padded), ``"box_labels"``,
    ``"box_counts"``, ``"indices"`` (sample indices). The default
    ``("images", "labels")`` is Keras's ``(x, y)``; a model with several
    inputs or outputs takes e.g. ``({"image": "images"}, {"class": "one_hot",
    "boxes": "boxes"})``.

    Order: with ``shuffle=True`` each epoch is a permutation keyed by
    ``(seed, epoch)``; ranks (``rank``, ``world_size``, default
    ``torch.distributed``'s) read disjoint shares of equal length
    (``shard="pad"`` repeats a few samples, ``"drop"`` leaves the remainder
    out). ``augment={"hflip": 0.5, "random_resized_crop": True}`` draws from a
    stream keyed by ``(seed, epoch, sample)``. ``num_threads`` worker threads
    (default ``STOKEHOLD_NUM_THREADS`` or the core count; at most 8 per core)
    build batches at most ``prefetch`` ahead (default twice the threads),
    delivered in order (``in_order=False``: as they complete).

    Images of many shapes (packed or resized with ``resize="fit"``): give
    ``buckets=`` (a number, e.g. 8, of aspect-ratio buckets derived from the
    data, or a list of ``(height, width)`` shapes). Each batch then holds
    samples of one bucket, each scaled with its aspect kept to fit the
    bucket's shape and placed at the top-left, the rest padded with 0; the
    ``"masks"`` output (``(B, H, W)`` uint8) is 1 on the sample's pixels.
    Every sample comes once an epoch: each bucket's last short batch is kept
    (or dropped with ``drop_last=True``), so ``len()`` is exact up front; a
    batch of ``indices`` says which sample each row is, and
    :func:`stokehold.reorder` puts ``predict`` rows back in sample order.
    See ``docs/buckets.md``.

    A sample that cannot be read or decoded fails its batch with a
    :class:`stokehold.SampleError`; with ``on_error="skip"`` it is replaced
    by the next sample of the epoch's order that loads (at most 16 tries),
    so batch shapes and counts stay the same, and it is listed in
    :attr:`skipped` (the ``"indices"`` output names the replacement).

    Keras calls ``ds[i]``. With ``shuffle=False`` it returns batch ``i``
    exactly (``predict`` rows stay in sample order). With ``shuffle=True`` the
    batches are already in a random order, so the ``k``-th call of an epoch
    returns the epoch's ``k``-th batch whatever ``i`` Keras drew: every sample
    still comes once per epoch, and the read-ahead always hits, also under
    ``model.fit``'s default ``shuffle=True``. :meth:`batch` gives exact random
    access. ``on_epoch_end`` (Keras calls it) moves to the next epoch.

    Object storage: ``source="s3://bucket/prefix/"`` (a dataset directory
    that ``pack`` wrote there) reads the index once and every sample by
    HTTP range request, neighbouring samples of a batch in one request and
    many requests in flight. Endpoint, region and credentials come from
    ``storage_options`` (``{"endpoint_url": ..., "region": ...,
    "aws_access_key_id": ..., ...}``), else the ``AWS_*`` environment
    variables, else ``~/.aws/config`` and ``~/.aws/credentials``;
    ``storage_options`` also tunes ``max_in_flight`` (16), ``max_gap``
    (bytes between samples still read in one request, 0), ``retries`` (4)
    and ``timeout`` (seconds, 30). ``cache_dir`` keeps the fetched bytes on
    local disk for later epochs (shared safely by the processes of one
    machine), at most ``cache_limit`` bytes (e.g. ``"50GB"``). See
    ``docs/object-storage.md``.

    After :meth:`close`, every call raises :class:`stokehold.LoaderClosedError`.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Dataset":
        # Become a keras.utils.PyDataset when Keras is installed, importing it
        # only then (and only when a Dataset is made, not at import).
        if cls is Dataset and importlib.util.find_spec("keras") is not None:
            from .keras import keras_dataset_class

            return super().__new__(keras_dataset_class())
        return super().__new__(cls)

    def __init__(
        self,
        source: Union[PathLike, Manifest],
        batch_size: int = 32,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_threads: Optional[int] = None,
        prefetch: Optional[int] = None,
        in_order: bool = True,
        normalize: bool = True,
        dtype: str = "float32",
        data_format: str = "channels_last",
        augment: Optional[Mapping[str, Any]] = None,
        outputs: Outputs = ("images", "labels"),
        one_hot: bool = False,
        max_boxes: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        shard: str = "pad",
        drop_last: bool = False,
        epoch: int = 0,
        on_error: str = "raise",
        buckets: Optional[Union[int, Sequence[Tuple[int, int]]]] = None,
        size: Optional[Union[int, Tuple[int, int]]] = None,
        resize: Optional[str] = None,
        max_size: Optional[int] = None,
        multiple: Optional[int] = None,
        filter: Optional[str] = None,
        channels: Optional[int] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        progress: Optional[bool] = None,
        storage_options: Optional[Mapping[str, Any]] = None,
        cache_dir: Optional[PathLike] = None,
        cache_limit: Optional[Union[int, str]] = None,
    ) -> None:
        choices = _native.CHOICES
        batch_size = _checks.integer("batch_size", batch_size, 1, 1 << 24)
        _checks.choice("dtype", dtype, choices["dtype"])
        _checks.choice("data_format", data_format, choices["data_format"])
        _checks.choice("shard", shard, choices["shard"])
        _checks.choice("on_error", on_error, choices["on_error"])
        n_buckets, bucket_shapes = _buckets(buckets)
        _check_outputs(outputs, one_hot, buckets is not None)
        augment = dict(augment or {})
        unknown = set(augment) - {"hflip", "random_resized_crop"}
        if unknown:
            raise InvalidArgumentError(f"augment: unknown augmentation(s) {sorted(unknown)}; known: hflip, random_resized_crop")
        hflip = _checks.number("augment hflip", augment.get("hflip", 0.0), 0.0, 1.0)
        rrc = _crop_ranges(augment.get("random_resized_crop"))
        if rank is None or world_size is None:
            rank, world_size = _distributed_rank(rank, world_size)
        world_size = _checks.integer("world_size", world_size, 1, 1 << 20)
        rank = _checks.integer("rank", rank, 0, world_size - 1)
        packed = _is_packed(source) if not isinstance(source, Manifest) else False
        remote = not isinstance(source, Manifest) and _checks.is_remote(os.fspath(source))
        if not remote and (storage_options is not None or cache_dir is not None or cache_limit is not None):
            raise InvalidArgumentError(
                "storage_options, cache_dir, cache_limit: these are for a dataset in object storage (s3://...)"
            )
        if cache_limit is not None and cache_dir is None:
            raise InvalidArgumentError("cache_limit: give cache_dir= too")
        limit = 0
        if cache_limit is not None:
            limit = (
                _native.parse_bytes(cache_limit)
                if isinstance(cache_limit, str)
                else _checks.integer("cache_limit", cache_limit, 1)
            )
        # A path is kept so that a pickled Dataset (DataLoader workers with
        # spawn) can index it again in the child.
        self._source_path = None if isinstance(source, Manifest) else os.fspath(source)
        manifest = None
        if packed:
            given = [
                n
                for n, v in (
                    ("size", size),
                    ("resize", resize),
                    ("filter", filter),
                    ("channels", channels),
                    ("max_size", max_size),
                    ("multiple", multiple),
                )
                if v is not None
            ]
            if given:
                raise InvalidArgumentError(
                    f"{', '.join(given)}: a packed file already has its shape and resize policy; "
                    "these apply to a manifest decoded just in time (pack again to change them)"
                )
        else:
            if resize == "fit":
                if size is not None:
                    raise InvalidArgumentError(
                        "size: resize='fit' keeps each image's own shape (longer side at most max_size); give max_size="
                    )
            elif size is None:
                raise InvalidArgumentError(
                    "size: a manifest source is decoded just in time: give size=(height, width), or resize='fit' "
                    "with max_size= (and buckets=)"
                )
            elif max_size is not None or multiple is not None:
                raise InvalidArgumentError("max_size, multiple: these belong to resize='fit'")
            if normalize and dtype == "float32" and (mean is None or std is None):
                raise InvalidArgumentError(
                    "mean, std: a manifest source has no statistics: give mean= and std= (0-255 scale, e.g. from"
                    " stokehold.pack(...).mean), or normalize=False"
                )
            manifest = (
                source
                if isinstance(source, Manifest)
                else index(source, progress=progress, max_pixels=max_pixels, max_file_bytes=max_file_bytes)
            )
        mean_list = None if mean is None else [_checks.number("mean", m) for m in mean]
        std_list = None if std is None else [_checks.number("std", s) for s in std]
        self._args: Dict[str, Any] = dict(
            packed=self._source_path if packed else None,
            manifest=None if manifest is None else manifest._inner,
            size=None if size is None else _checks.size("size", size),
            max_size=_checks.integer("max_size", 512 if max_size is None else max_size, 1, 16384),
            multiple=_checks.integer("multiple", 1 if multiple is None else multiple, 1, 4096),
            buckets=n_buckets,
            bucket_shapes=bucket_shapes,
            resize=_checks.choice("resize", resize or "stretch", choices["resize"]),
            filter=_checks.choice("filter", filter or "bilinear", choices["filter"]),
            channels=3 if channels is None else _checks.integer("channels", channels, 1, 3),
            batch_size=batch_size,
            shuffle=bool(shuffle),
            seed=_checks.integer("seed", seed, 0, 2**64 - 1),
            drop_last=bool(drop_last),
            rank=rank,
            world_size=world_size,
            shard=shard,
            dtype=dtype,
            data_format=data_format,
            normalize=bool(normalize),
            mean=mean_list,
            std=std_list,
            hflip=hflip,
            random_resized_crop=rrc,
            one_hot=bool(one_hot),
            max_boxes=_checks.optional_integer("max_boxes", max_boxes, 0, 100_000),
            num_threads=_checks.optional_integer("num_threads", num_threads, 1),
            prefetch=_checks.optional_integer("prefetch", prefetch, 1, 1024),
            in_order=bool(in_order),
            epoch=_checks.integer("epoch", epoch, 0),
            on_error=on_error,
            max_pixels=_checks.integer("max_pixels", max_pixels, 1),
            max_file_bytes=_checks.integer("max_file_bytes", max_file_bytes, 1),
            storage_options=_checks.storage_options(storage_options),
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            cache_limit=limit,
        )
        self.outputs = outputs
        self._lock = threading.Lock()
        self._pid = -1
        self._closed = False
        self._native_loader: Optional[_native.NativeLoader] = None
        # The process whose __getitem__ calls follow the loader's own order;
        # copies in other processes (Keras's use_multiprocessing workers)
        # return exactly the batch asked for, of the epoch ``_epoch``.
        self._home = os.getpid()
        self._epoch = self._args["epoch"]
        self._home_calls = 0
        self._native()  # open now: errors surface here, not in the first batch
        self._framework_init()

    def _framework_init(self) -> None:
        """Set up by a framework subclass (Keras's PyDataset attributes)."""

    # The native loader belongs to the process that made it: after a fork it
    # is made anew (its worker threads do not survive the fork), and a pickle
    # carries the arguments, not the handle.
    def _native(self) -> _native.NativeLoader:
        if self._closed:
            raise LoaderClosedError("the dataset is closed; make a new Dataset to read again")
        if self._native_loader is None or self._pid != os.getpid():
            # A forked copy starts at the epoch its parent was in (the
            # parent's loader, copied without its threads, is left alone).
            self._native_loader = _native.NativeLoader(**{**self._args, "epoch": self._epoch})
            self._pid = os.getpid()
        return self._native_loader

    def __getstate__(self) -> Dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native_loader", "_lock")}
        state["_resume"] = self.state_dict() if self._pid == os.getpid() else None
        if state["_args"]["manifest"] is not None:
            if self._source_path is None:
                raise TypeError(
                    "a Dataset made from a Manifest object cannot be pickled; make it from the manifest's path"
                )
            state["_args"] = {**state["_args"], "manifest": None}
        return state

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        # Through a function, not the class: the Keras subclass is made at
        # run time, and the receiving process may or may not have Keras.
        return (_unpickle, (self.__getstate__(),))

    def __setstate__(self, state: Dict[str, Any]) -> None:
        resume = state.pop("_resume", None)
        if state["_args"]["packed"] is None and state["_args"]["manifest"] is None:
            state["_args"] = {**state["_args"], "manifest": index(state["_source_path"], progress=False)._inner}
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._native_loader = None
        self._closed = False
        self._pid = -1
        if resume is not None:
            self.load_state_dict(resume)

    # -- what the data is -------------------------------------------------
    @property
    def io_stats(self) -> Optional[Dict[str, int]]:
        """For a dataset in object storage, what its reads fetched so far:
        ``requests`` (answered range requests), ``bytes``, ``retries``,
        ``cache_hits`` (cache blocks served); ``None`` for a local one."""
        stats = self._native().io_stats()
        if stats is None:
            return None
        return dict(zip(("requests", "bytes", "retries", "cache_hits"), stats))

    @property
    def classes(self) -> List[str]:
        """Class names."""
        return self._native().classes

    @property
    def image_shape(self) -> Tuple[Optional[int], Optional[int], int]:
        """``(height, width, channels)`` of every image; height and width are
        None when the images differ in shape (``buckets=``): a Keras model
        takes ``keras.Input(shape=ds.image_shape)``."""
        h, w, c = self._native().image_shape
        return (h or None, w or None, c)

    @property
    def bucket_shapes(self) -> Optional[List[Tuple[int, int]]]:
        """With ``buckets=``: the ``(height, width)`` of each bucket."""
        return self._native().bucket_shapes

    def indices(self, epoch: Optional[int] = None) -> Any:
        """The sample index of each row of this rank's batches of ``epoch``
        (default: the current one), in batch order, without reading any
        pixels: what ``predict`` rows are, for :func:`stokehold.reorder`.
        (Under ``on_error="skip"`` a replaced sample's row is its
        replacement's; the ``"indices"`` output tells.)"""
        loader = self._native()
        if epoch is None:
            epoch = loader.state()[0]
        return loader.epoch_indices(_checks.integer("epoch", epoch, 0))

    @property
    def mean(self) -> Optional[List[float]]:
        """Per-channel mean (0-255) used to normalize."""
        stats = self._native().stats
        return self._args["mean"] or (stats[0] if stats else None)

    @property
    def std(self) -> Optional[List[float]]:
        """Per-channel std (0-255) used to normalize."""
        stats = self._native().stats
        return self._args["std"] or (stats[1] if stats else None)

    @property
    def samples_per_epoch(self) -> int:
        """Samples in this rank's share of one epoch."""
        return self._native().samples_per_epoch()

    @property
    def rank(self) -> int:
        """This process's rank: which share of each epoch it reads."""
        return int(self._args["rank"])

    @property
    def world_size(self) -> int:
        """How many ranks share each epoch."""
        return int(self._args["world_size"])

    @property
    def num_threads(self) -> Optional[int]:
        """Worker threads asked for (None: ``STOKEHOLD_NUM_THREADS`` or the core count)."""
        return self._args["num_threads"]  # type: ignore[no-any-return]

    @property
    def skipped(self) -> List[SkippedSample]:
        """Samples replaced under ``on_error="skip"`` (the most recent 10,000)."""
        found, _ = self._native().skipped()
        return [SkippedSample(*s) for s in found]

    @property
    def num_skipped(self) -> int:
        """How many samples were replaced under ``on_error="skip"`` in all."""
        return self._native().skipped()[1]

    # -- the Sequence contract ---------------------------------------------
    def __len__(self) -> int:
        return len(self._native())

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise SampleIndexError(f"batch {index} is out of range: the epoch has {n} batches")
        index %= n
        loader = self._native()
        if os.getpid() != self._home:
            # A copy in a worker process of Keras (use_multiprocessing=True):
            # the parent hands out the indices, each once per epoch.
            return _structure(self.outputs, loader.batch(self._epoch, index))
        with self._lock:
            epoch, next_batch, _, _ = loader.state()
            self._epoch = epoch
            self._home_calls += 1
            if self._args["shuffle"] or index == next_batch:
                batch = loader.next_batch()
            else:
                batch = loader.batch(epoch, index)
        return _structure(self.outputs, batch)

    def batch(self, index: int, epoch: Optional[int] = None) -> Any:
        """Batch ``index`` of ``epoch`` (default: the current one), computed now."""
        loader = self._native()
        if epoch is None:
            epoch = loader.state()[0]
        index = _checks.integer("index", index, 0)
        return _structure(self.outputs, loader.batch(_checks.integer("epoch", epoch, 0), index))

    def on_epoch_end(self) -> None:
        """Moves to the next epoch (once, however often it is called at an epoch end)."""
        loader = self._native()
        with self._lock:
            epoch, next_batch, seed, fingerprint = loader.state()
            if next_batch == 0 and self._home_calls == 0 and getattr(self, "use_multiprocessing", False):
                # Keras's worker processes made this epoch's batches from
                # copies: the loader here saw none of them.
                loader.resume(epoch + 1, 0)
            else:
                loader.end_epoch()
            self._epoch = loader.state()[0]
            self._home_calls = 0

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch`` from its first batch (as torch's
        ``DistributedSampler.set_epoch``)."""
        epoch = _checks.integer("epoch", epoch, 0)
        self._native().resume(epoch, 0)
        self._epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        """The rest of the current epoch's batches, in order."""
        loader = self._native()
        epoch, next_batch, _, _ = loader.state()
        for _ in range(next_batch, len(self)):
            yield _structure(self.outputs, self._native().next_batch())

    def generator(self) -> Iterator[Any]:
        """An endless iterator that cycles epochs (reshuffling each): for
        ``model.fit(ds.generator(), steps_per_epoch=S)``."""
        while True:
            yield _structure(self.outputs, self._native().next_batch())

    def state_dict(self) -> Dict[str, int]:
        """Where the job is: ``load_state_dict`` of it resumes the exact batches.

        ``position`` counts the samples of the epoch's global order that the
        whole job (every rank, in lockstep) has consumed, so any one rank's
        state restores the job on any number of ranks or with another batch
        size: the rest of the epoch is then delivered exactly once across
        the new ranks (see ``docs/scale.md``). With ``buckets=`` it counts
        the epoch's batches, and the batch size must stay the same.
        """
        loader = self._native()
        epoch, next_batch, seed, _ = loader.state()
        return {
            "version": 2,
            "epoch": epoch,
            "position": loader.position(epoch, next_batch),
            "num_samples": self._num_samples(),
            "seed": seed,
            "shuffle": int(self._args["shuffle"]),
            "fingerprint": loader.order_fingerprint(),
            "next_batch": next_batch,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self._args["batch_size"],
        }

    def _num_samples(self) -> int:
        """Samples in the whole source (not this rank's share)."""
        return int(self._native().source_len())

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resumes at a ``state_dict()``, perhaps taken with another number
        of ranks or batch size: the rest of that epoch is cut for this
        dataset's ranks. A state of other data, seed or shuffling is
        refused, naming the field that differs."""
        if not isinstance(state, Mapping) or state.get("version") != 2:
            raise InvalidArgumentError(
                f"state must be a dict from state_dict() (version 2); got {state!r}"
            )
        mine = self.state_dict()
        for field in ("num_samples", "seed", "shuffle", "fingerprint"):
            if state.get(field) != mine[field]:
                raise InvalidArgumentError(
                    f"state[{field!r}] is {state.get(field)!r}, this dataset's is {mine[field]!r}:"
                    " the state was saved for other data or another order"
                )
        epoch = _checks.integer("state['epoch']", state.get("epoch"), 0, 2**63 - 1)
        positions = int(self._native().positions_per_epoch())
        position = _checks.integer("state['position']", state.get("position"), 0, positions)
        if position >= positions:
            epoch, position = epoch + 1, 0
        self._native().resume(epoch, position)
        self._epoch = epoch

    def close(self) -> None:
        """Stops the worker threads and frees the buffers. Later calls raise
        :class:`stokehold.LoaderClosedError`; closing twice is fine."""
        if self._native_loader is not None and self._pid == os.getpid():
            self._native_loader.close()
        self._native_loader = None
        self._closed = True

    def __del__(self) -> None:
        # The workers are joined without holding the GIL: one may be waiting
        # on something that needs it (a server in this process, a slow read).
        loader = self.__dict__.get("_native_loader")
        if loader is None or self.__dict__.get("_pid") != os.getpid() or sys.is_finalizing():
            return
        try:
            loader.close()
        except Exception:  # noqa: BLE001 - nothing to report to from a finalizer
            pass

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- copies -------------------------------------------------------------
    def shard(self, index: int, count: int, *, num_threads: Optional[int] = None) -> "Dataset":
        """A copy that reads share ``index`` of ``count`` of this dataset's
        share: rank ``rank * count + index`` of ``world_size * count``. The
        copy starts at this dataset's current epoch. (What each worker
        process of a torch ``DataLoader`` reads.)"""
        count = _checks.integer("count", count, 1, 1 << 20)
        index = _checks.integer("index", index, 0, count - 1)
        changes: Dict[str, Any] = {
            "rank": self.rank * count + index,
            "world_size": self.world_size * count,
            "epoch": self._epoch,
        }
        if num_threads is not None:
            changes["num_threads"] = _checks.integer("num_threads", num_threads, 1)
        return self._copy(changes)

    def _copy(self, changes: Dict[str, Any]) -> "Dataset":
        """A copy with other loader arguments (in this process: no pickling)."""
        if self._closed:
            raise LoaderClosedError("the dataset is closed; make a new Dataset to read again")
        clone = object.__new__(type(self))
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native_loader", "_lock")}
        state["_args"] = {**self._args, **changes}
        state["_epoch"] = changes.get("epoch", self._epoch)
        state["_home"] = os.getpid()
        state["_home_calls"] = 0
        clone.__setstate__(state)
        clone._framework_init()
        return clone

    # -- adapters -----------------------------------------------------------
    def torch(self) -> Any:
        """A ``torch.utils.data.IterableDataset`` of torch tensors (no copy);
        in a ``DataLoader`` with ``num_workers > 0`` each worker reads a
        disjoint share. Use ``DataLoader(ds.torch(), batch_size=None)``."""
        from .torch import TorchDataset

        return TorchDataset(self)

    def __repr__(self) -> str:
        a = self._args
        src = a["packed"] or self._source_path or "manifest"
        if self._closed:
            return f"<stokehold.Dataset {src} (closed)>"
        return (
            f"<stokehold.Dataset {src}: {self.samples_per_epoch} samples, {len(self)} batches of {a['batch_size']},"
            f" shuffle={a['shuffle']}, rank {a['rank']}/{a['world_size']}>"
        )


def _unpickle(state: Dict[str, Any]) -> Dataset:
    ds = Dataset.__new__(Dataset)
    # The state holds the framework's own attributes too (Keras's workers).
    ds.__setstate__(state)
    return ds


def _distributed_rank(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """The arguments, else torch.distributed's rank when it is initialised, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return (dist.get_rank() if rank is None else rank, dist.get_world_size() if world_size is None else world_size)
    return (rank or 0, world_size or 1)
