"""``stokehold.Dataset``: fixed-shape batches from a packed file or a manifest.

The batches come from Rust worker threads that run ahead of the consumer
(at most ``prefetch`` batches), in a deterministic order, every sample of
this rank's share exactly once per epoch. A ``Dataset`` is a Keras 3
``PyDataset`` when Keras is installed, an iterable of numpy batches always,
and has adapters for PyTorch (:meth:`Dataset.torch`) and JAX
(:func:`stokehold.jax.prefetch_to_device`).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from .manifest import Manifest, PathLike, index

__all__ = ["Dataset", "Outputs"]

#: A batch structure: a name, or a tuple / list / dict of structures.
Outputs = Union[str, Tuple[Any, ...], Mapping[str, Any]]

_NAMES = ("images", "labels", "one_hot", "boxes", "box_labels", "box_counts", "indices")


def _is_packed(source: PathLike) -> bool:
    path = os.fspath(source)
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _structure(outputs: Outputs, batch: Dict[str, Any]) -> Any:
    if isinstance(outputs, str):
        if outputs not in batch:
            raise KeyError(
                f"output {outputs!r} is not in the batch (available: {', '.join(k for k in _NAMES if k in batch)})"
            )
        return batch[outputs]
    if isinstance(outputs, Mapping):
        return {k: _structure(v, batch) for k, v in outputs.items()}
    return tuple(_structure(o, batch) for o in outputs)


def _check_outputs(outputs: Outputs, one_hot: bool) -> None:
    if isinstance(outputs, str):
        if outputs not in _NAMES:
            raise ValueError(f"unknown output {outputs!r}; the batch has {', '.join(_NAMES)}")
        if outputs == "one_hot" and not one_hot:
            raise ValueError("output 'one_hot' needs one_hot=True")
    elif isinstance(outputs, Mapping):
        for v in outputs.values():
            _check_outputs(v, one_hot)
    else:
        for o in outputs:
            _check_outputs(o, one_hot)


class Dataset:
    """Batches from a packed file (the fast path) or a manifest (decoded just in time).

    ``source``: a file written by :func:`stokehold.pack`, or a
    :class:`Manifest` / anything :func:`stokehold.index` accepts, decoded and
    resized in the workers to ``size=(height, width)`` with the same code as
    ``pack``.

    Each item is the ``outputs`` structure of named arrays: ``"images"``
    (``(B, H, W, C)`` float32 normalized with the file's mean/std, or uint8
    with ``dtype="uint8"``; ``(B, C, H, W)`` with
    ``layout="channels_first"``), ``"labels"`` (int64), ``"one_hot"``
    (float32, with ``one_hot=True``), ``"boxes"`` (``(B, K, 4)`` float32,
    -1 padded), ``"box_labels"``, ``"box_counts"``, ``"indices"`` (sample
    indices). The default ``("images", "labels")`` is Keras's ``(x, y)``; a
    model with several inputs or outputs takes e.g.
    ``({"image": "images"}, {"class": "one_hot", "boxes": "boxes"})``.

    Order: with ``shuffle=True`` each epoch is a permutation keyed by
    ``(seed, epoch)``; ranks (``rank``, ``world_size``) read disjoint shares
    of equal length. ``augment={"hflip": 0.5, "random_resized_crop": ((0.08,
    1.0), (3 / 4, 4 / 3))}`` draws from a stream keyed by ``(seed, epoch,
    sample)``.

    Keras calls ``ds[i]``. With ``shuffle=False`` it returns batch ``i``
    exactly (``predict`` rows stay in sample order). With ``shuffle=True`` the
    batches are already in a random order, so the ``k``-th call of an epoch
    returns the epoch's ``k``-th batch whatever ``i`` Keras drew: every sample
    still comes once per epoch, and the read-ahead always hits, also under
    ``model.fit``'s default ``shuffle=True``. :meth:`batch` gives exact random
    access. ``on_epoch_end`` (Keras calls it) moves to the next epoch.

    Keras's own ``workers`` / ``use_multiprocessing`` attributes stay at 1 /
    False: the loader runs ahead by itself. Setting them works (Keras worker
    threads share this Dataset; worker processes get copies that return
    exactly the batch asked for, of the epoch the parent is in) but adds
    only overhead.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Dataset":
        # Become a keras.utils.PyDataset when Keras is installed, importing it
        # only then (and only when a Dataset is made, not at import).
        if cls is Dataset and importlib.util.find_spec("keras") is not None:
            return super().__new__(_keras_class())
        return super().__new__(cls)

    def __init__(
        self,
        source: Union[PathLike, Manifest],
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        workers: Optional[int] = None,
        prefetch: Optional[int] = None,
        normalize: bool = True,
        dtype: str = "float32",
        augment: Optional[Mapping[str, Any]] = None,
        outputs: Outputs = ("images", "labels"),
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        drop_last: bool = False,
        *,
        size: Optional[Union[int, Tuple[int, int]]] = None,
        resize: str = "stretch",
        channels: int = 3,
        layout: str = "channels_last",
        one_hot: bool = False,
        max_boxes: Optional[int] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        shard: str = "pad",
        order: str = "ordered",
        epoch: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8'; got {dtype!r}")
        _check_outputs(outputs, one_hot)
        augment = dict(augment or {})
        unknown = set(augment) - {"hflip", "random_resized_crop"}
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; known: hflip, random_resized_crop")
        rrc = augment.get("random_resized_crop")
        if rrc is True:
            rrc = ((0.08, 1.0), (3 / 4, 4 / 3))
        if rank is None or world_size is None:
            rank, world_size = _distributed_rank(rank, world_size)
        packed = _is_packed(source) if not isinstance(source, Manifest) else False
        manifest = None
        # A path is kept so that a pickled Dataset (DataLoader workers with
        # spawn) can index it again in the child.
        self._source_path = None if isinstance(source, Manifest) else os.fspath(source)
        if not packed:
            manifest = source if isinstance(source, Manifest) else index(source)
            if size is None:
                raise ValueError("a manifest source is decoded just in time: give size=(height, width)")
            if normalize and dtype == "float32" and (mean is None or std is None):
                raise ValueError(
                    "a manifest source has no statistics: give mean= and std= (0-255 scale, e.g. from"
                    " stokehold.pack(...).mean), or normalize=False"
                )
        if isinstance(size, int):
            size = (size, size)
        self._args: Dict[str, Any] = dict(
            packed=self._source_path if packed else None,
            manifest=None if manifest is None else manifest._inner,
            size=None if size is None else (int(size[0]), int(size[1])),
            resize=resize,
            filter="bilinear",
            channels=channels,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
            shard=shard,
            dtype=dtype,
            layout=layout,
            normalize=normalize,
            mean=None if mean is None else [float(m) for m in mean],
            std=None if std is None else [float(s) for s in std],
            hflip=float(augment.get("hflip", 0.0)),
            random_resized_crop=rrc,
            one_hot=one_hot,
            max_boxes=max_boxes,
            workers=workers,
            prefetch=prefetch,
            order=order,
            epoch=epoch,
        )
        self.outputs = outputs
        self._lock = threading.Lock()
        self._pid = -1
        self._native_loader: Optional[_native.NativeLoader] = None
        # The process whose __getitem__ calls follow the loader's own order;
        # copies in other processes (Keras's use_multiprocessing workers)
        # return exactly the batch asked for, of the epoch ``_epoch``.
        self._home = os.getpid()
        self._epoch = epoch
        self._home_calls = 0
        self._native()  # open now: errors surface here, not in the first batch
        keras_init = getattr(self, "_keras_init", None)
        if keras_init is not None:
            keras_init()

    # The native loader belongs to the process that made it: after a fork it
    # is made anew (its worker threads do not survive the fork), and a pickle
    # carries the arguments, not the handle.
    def _native(self) -> _native.NativeLoader:
        if self._native_loader is None or self._pid != os.getpid():
            # A forked copy starts at the epoch its parent was in (the
            # parent's loader, copied without its threads, is left alone).
            self._native_loader = _native.NativeLoader(**{**self._args, "epoch": self._epoch})
            self._pid = os.getpid()
        return self._native_loader

    def __getstate__(self) -> Dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native_loader", "_lock")}
        state["_resume"] = self._native().state() if self._pid == os.getpid() else None
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
            state["_args"] = {**state["_args"], "manifest": index(state["_source_path"])._inner}
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._native_loader = None
        self._pid = -1
        if resume is not None:
            self._epoch = resume[0]
            self._native().restore(resume)

    # -- what the data is -------------------------------------------------
    @property
    def classes(self) -> List[str]:
        """Class names."""
        return self._native().classes

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""
        return self._native().image_shape

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

    # -- the Sequence contract ---------------------------------------------
    def __len__(self) -> int:
        return len(self._native())

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"batch {index} is out of range for {n} batches")
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
        return _structure(self.outputs, loader.batch(epoch, index))

    def on_epoch_end(self) -> None:
        """Moves to the next epoch (once, however often it is called at an epoch end)."""
        loader = self._native()
        with self._lock:
            epoch, next_batch, seed, fingerprint = loader.state()
            if next_batch == 0 and self._home_calls == 0 and getattr(self, "use_multiprocessing", False):
                # Keras's worker processes made this epoch's batches from
                # copies: the loader here saw none of them.
                loader.restore((epoch + 1, 0, seed, fingerprint))
            else:
                loader.end_epoch()
            self._epoch = loader.state()[0]
            self._home_calls = 0

    def __iter__(self) -> Iterator[Any]:
        """The rest of the current epoch's batches, in order."""
        loader = self._native()
        epoch, next_batch, _, _ = loader.state()
        for _ in range(next_batch, len(self)):
            yield _structure(self.outputs, loader.next_batch())

    def generator(self) -> Iterator[Any]:
        """An endless iterator that cycles epochs (reshuffling each): for
        ``model.fit(ds.generator(), steps_per_epoch=S)``."""
        loader = self._native()
        while True:
            yield _structure(self.outputs, loader.next_batch())

    def state_dict(self) -> Dict[str, int]:
        """Where the loader is: ``load_state_dict`` of it resumes the exact batches."""
        epoch, next_batch, seed, fingerprint = self._native().state()
        return {"epoch": epoch, "next_batch": next_batch, "seed": seed, "fingerprint": fingerprint}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resumes at a ``state_dict()``."""
        self._native().restore((state["epoch"], state["next_batch"], state["seed"], state["fingerprint"]))
        self._epoch = state["epoch"]

    def close(self) -> None:
        """Stops the worker threads and frees the buffers."""
        if self._native_loader is not None and self._pid == os.getpid():
            self._native_loader.close()
        self._native_loader = None

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adapters -----------------------------------------------------------
    def torch(self) -> Any:
        """A ``torch.utils.data.IterableDataset`` of torch tensors (no copy);
        in a ``DataLoader`` with ``num_workers > 0`` each worker reads a
        disjoint share. Use ``DataLoader(ds.torch(), batch_size=None)``."""
        from .torch import TorchDataset

        return TorchDataset(self)

    def _with(self, **changes: Any) -> "Dataset":
        """A copy with other loader arguments (in this process: no pickling)."""
        clone = object.__new__(type(self))
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native_loader", "_lock")}
        state["_args"] = {**self._args, **changes}
        state["_epoch"] = changes.get("epoch", self._epoch)
        clone.__setstate__(state)
        keras_init = getattr(clone, "_keras_init", None)
        if keras_init is not None:
            keras_init()
        return clone

    def __repr__(self) -> str:
        a = self._args
        src = a["packed"] or "manifest"
        return (
            f"<stokehold.Dataset {src}: {self.samples_per_epoch} samples, {len(self)} batches of {a['batch_size']},"
            f" shuffle={a['shuffle']}, rank {a['rank']}/{a['world_size']}>"
        )


def _unpickle(state: Dict[str, Any]) -> Dataset:
    ds = Dataset.__new__(Dataset)
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


_KERAS_CLASS: Optional[type] = None


def _keras_class() -> type:
    """Dataset as a keras.utils.PyDataset, or plain Dataset when Keras
    cannot be imported (e.g. its configured backend is not installed)."""
    global _KERAS_CLASS
    if _KERAS_CLASS is None:
        try:
            import keras
        except Exception:  # noqa: BLE001 - any failure of Keras's own import
            _KERAS_CLASS = Dataset
            return Dataset

        class KerasDataset(Dataset, keras.utils.PyDataset):  # type: ignore[misc]
            """A stokehold Dataset that Keras recognises as a PyDataset."""

            def _keras_init(self) -> None:
                # Keras's own workers are not needed: the loader runs ahead.
                keras.utils.PyDataset.__init__(self, workers=1, use_multiprocessing=False)

            @property
            def num_batches(self) -> int:
                return len(self)

        KerasDataset.__name__ = "Dataset"
        KerasDataset.__qualname__ = "Dataset"
        _KERAS_CLASS = KerasDataset
    return _KERAS_CLASS
