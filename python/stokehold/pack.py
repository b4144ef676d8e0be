"""Pack a dataset into one HDF5 file, and look at the result."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

from . import _checks, _native
from ._native import PackReport
from ._progress import Bar
from .errors import InvalidArgumentError
from .manifest import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, Manifest, PathLike, index

__all__ = ["pack", "commit", "inspect", "preview", "PackReport", "CommitReport"]


@contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """While a long call runs on the main thread, SIGTERM and SIGHUP (what
    batch schedulers and closed terminals send) stop it like Ctrl-C, so
    that it cleans up its temporary file; then the process ends by the
    signal it got. Handlers the program installed itself are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: List[int] = []

    def handler(signum: int, frame: object) -> None:
        got.append(signum)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if got:
            signal.raise_signal(got[0])


def pack(
    source: Union[PathLike, Manifest],
    out: PathLike,
    size: Union[int, Tuple[int, int]] = (224, 224),
    *,
    resize: str = "stretch",
    filter: str = "bilinear",
    channels: int = 3,
    storage: str = "raw",
    quality: int = 90,
    fill: int = 0,
    num_threads: Optional[int] = None,
    strict: bool = False,
    force: bool = False,
    progress: Optional[bool] = None,
    format: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    shard_size: Optional[Union[int, str]] = None,
    samples_per_shard: Optional[int] = None,
    part: Optional[Tuple[int, int]] = None,
    max_size: int = 512,
    multiple: int = 1,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> PackReport:
    """Decodes, resizes and writes a dataset into one HDF5 file at ``out``, or
    into a directory of shards.

    ``source`` is a :class:`Manifest`, a manifest file (read as it is), or
    anything else :func:`stokehold.index` accepts (indexed first, with
    ``format``). ``size`` is ``(height, width)`` or one number for a square.

    Shards: with ``shard_size`` (bytes, or text such as ``"2GB"``) or
    ``samples_per_shard``, ``out`` is a directory that receives
    ``shard-00000.h5 …`` and, last and atomically, ``dataset.json``, its
    index; :class:`stokehold.Dataset`, :func:`inspect` and :func:`preview`
    read it as one dataset. ``part=(i, n)`` packs only part ``i`` of ``n``
    (manifest positions ``[i·len/n, (i+1)·len/n)``) into
    ``out/part-IIIII-of-NNNNN/``, for any scheduler to run the parts; then
    :func:`commit` joins them (``stokehold.ray.pack`` does both on Ray).
    ``out`` may be in object storage, ``"s3://bucket/prefix/"`` (sharded
    only; ``storage_options`` as for :class:`stokehold.Dataset`): the shards
    are written in a temporary folder (``TMPDIR``) and each is uploaded as
    soon as it is complete, the index last.

    - ``resize``: ``"stretch"`` (fill the size), ``"letterbox"`` (keep the
      aspect, centre, pad with ``fill``), ``"crop"`` (shorter side to size,
      centre crop), ``"fit"`` (keep the aspect and each image's own shape:
      the longer side at most ``max_size``, never enlarged, both sides
      rounded to a multiple of ``multiple``; ``size`` is not used; read it
      with ``Dataset(..., buckets=...)``). Boxes go through the same
      transform, are clipped, and are dropped (and reported) when nothing is
      left of them.
    - ``filter``: ``"bilinear"`` (default), ``"nearest"``, ``"area"``,
      ``"lanczos"``; downscaling is antialiased.
    - ``channels``: 3 (RGB) or 1 (gray). EXIF orientation is applied; boxes
      are taken to be in the displayed orientation. Transparent pixels are
      composited over white.
    - ``storage``: ``"raw"`` (``uint8 (N, H, W, C)``, the fast path),
      ``"jpeg"`` (at ``quality``) or ``"png"``, one encoded image per sample.

    Per-channel mean and std of every stored pixel are computed exactly in
    the same pass and stored. The file is written to a temporary file
    beside ``out`` and renamed only on success; an existing ``out`` is
    replaced only with ``force=True``. Everything that could fail at the
    end (the output being a directory, the source itself, being written by
    another pack; class names HDF5 cannot store) is checked before any image
    is decoded. A sample that cannot be decoded is skipped and reported in
    ``PackReport.findings`` (``strict=True``: the pack fails). Releases the
    GIL; Ctrl-C, SIGTERM and SIGHUP stop it and leave nothing behind.
    ``progress`` shows a progress bar (see :func:`stokehold.index`).
    """
    resize = _checks.choice("resize", resize, _native.CHOICES["resize"])
    filter = _checks.choice("filter", filter, _native.CHOICES["filter"])
    storage = _checks.choice("storage", storage, _native.CHOICES["storage"])
    hw = _checks.size("size", size)
    max_size = _checks.integer("max_size", max_size, 1, 16384)
    multiple = _checks.integer("multiple", multiple, 1, max_size)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise InvalidArgumentError(f"channels must be 1 or 3, got {channels!r}")
    quality = _checks.integer("quality", quality, 1, 100)
    fill = _checks.integer("fill", fill, 0, 255)
    threads = _checks.optional_integer("num_threads", num_threads, 1)
    max_pixels = _checks.integer("max_pixels", max_pixels, 1)
    max_file_bytes = _checks.integer("max_file_bytes", max_file_bytes, 1)
    shard_bytes = None
    if shard_size is not None:
        shard_bytes = (
            _native.parse_bytes(shard_size) if isinstance(shard_size, str) else _checks.integer("shard_size", shard_size, 1)
        )
    per_shard = _checks.optional_integer("samples_per_shard", samples_per_shard, 1)
    if part is not None:
        try:
            i, n = part
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"part must be a pair (index, count), got {part!r}") from None
        n = _checks.integer("part count", n, 1)
        part = (_checks.integer("part index", i, 0, n - 1), n)
    sharded = shard_bytes is not None or per_shard is not None or part is not None
    out = os.fspath(out)
    remote, options = _checks.output_storage(out, storage_options)
    if remote and shard_bytes is None and per_shard is None and part is None:
        raise InvalidArgumentError(
            f"{out}: a dataset in object storage is written as shards: give shard_size= or samples_per_shard="
        )
    _native.check_output(out, bool(force), sharded, part, options)
    with _termination_as_interrupt():
        manifest = _manifest_of(source, format, strict, threads, progress, max_pixels, max_file_bytes)
        with Bar("packing", progress) as callback:
            return _native.pack(
                manifest._inner if isinstance(manifest, Manifest) else manifest,
                out,
                hw,
                resize,
                filter,
                int(channels),
                storage,
                quality,
                fill,
                threads,
                bool(strict),
                bool(force),
                max_pixels,
                max_file_bytes,
                shard_bytes,
                per_shard,
                part,
                callback,
                max_size,
                multiple,
                options,
                manifest_as_source=not isinstance(manifest, TaskManifest),
            )


class TaskManifest(str):
    """The path of a manifest file written for one task of a distributed
    pack (``stokehold.ray``): packed line by line as it is, not indexed
    again even with ``strict`` (which still applies when decoding), and
    recorded with the source in its header, not its own path, which
    differs from task to task."""


def _manifest_of(
    source: Union[PathLike, Manifest],
    format: str,
    strict: bool,
    threads: Optional[int],
    progress: Optional[bool],
    max_pixels: int,
    max_file_bytes: int,
) -> Union[Manifest, str]:
    """What to pack: a manifest as given; a manifest file's path, which the
    pack reads line by line (indexing it again would probe every image once
    more, and holding it would take memory for every sample); or the
    manifest of an index."""
    if isinstance(source, (Manifest, TaskManifest)):
        return source
    path = os.fspath(source)
    is_manifest = format == "manifest" or (
        format == "auto" and os.path.isfile(path) and path.endswith((".jsonl", ".ndjson"))
    )
    if is_manifest and not strict:
        # Read line by line as it is packed, and recorded as the source.
        return path
    return index(
        source,
        format=format,
        strict=strict,
        num_threads=threads,
        progress=progress,
        max_pixels=max_pixels,
        max_file_bytes=max_file_bytes,
    )


class CommitReport(NamedTuple):
    """What :func:`commit` wrote: ``dataset.json`` in ``path``."""

    path: str
    num_samples: int
    num_shards: int
    mean: List[float]
    std: List[float]


def commit(path: PathLike, *, storage_options: Optional[Mapping[str, Any]] = None) -> CommitReport:
    """Checks that every part of the dataset directory ``path`` was packed
    (``pack(..., part=(i, n))`` for every ``i``), with the same options and
    no gap or overlap, and writes its index, ``dataset.json``. An incomplete
    directory raises :class:`stokehold.InvalidFileError` naming what is
    missing. ``path`` may be ``s3://bucket/prefix/`` (see :func:`pack`)."""
    samples, shards, mean, std = _native.commit(os.fspath(path), _checks.storage_options(storage_options))
    return CommitReport(os.fspath(path), samples, shards, mean, std)


def inspect(path: PathLike, *, storage_options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Describes a packed file or dataset (a directory, or ``s3://bucket/prefix/``
    with ``storage_options`` as for :class:`stokehold.Dataset`): samples,
    shape, storage, classes with counts, boxes, mean/std, format version,
    size on disk."""
    return _native.inspect(os.fspath(path), _checks.storage_options(storage_options))


def preview(
    path: PathLike,
    out: PathLike = "preview.png",
    n: int = 64,
    seed: int = 0,
    *,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> List[int]:
    """Draws ``n`` packed samples (a seeded random choice) into a PNG grid at
    ``out``, with boxes and class names; returns the sample indices drawn.
    ``path`` may be in object storage (see :func:`inspect`)."""
    n = _checks.integer("n", n, 1, 4096)
    seed = _checks.integer("seed", seed, 0, 2**64 - 1)
    return _native.preview(os.fspath(path), os.fspath(out), n, seed, _checks.storage_options(storage_options))
