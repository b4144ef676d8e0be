"""Pack a dataset into one HDF5 file, and look at the result."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _native
from ._native import PackReport
from .manifest import DEFAULT_MAX_PIXELS, Manifest, PathLike, index

__all__ = ["pack", "inspect", "preview", "PackReport"]

_RESIZE = ("stretch", "letterbox", "crop")
_FILTERS = ("nearest", "bilinear", "area", "lanczos")
_STORAGE = ("raw", "jpeg", "png")


def _size(size: Union[int, Tuple[int, int], Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = (int(v) for v in size)
    return (h, w)


def _choice(name: str, value: str, allowed: Tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


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
    workers: Optional[int] = None,
    strict: bool = False,
    force: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    format: str = "auto",
) -> PackReport:
    """Decodes, resizes and writes a dataset into one HDF5 file at ``out``.

    ``source`` is a :class:`Manifest`, or anything :func:`stokehold.index`
    accepts (indexed first). ``size`` is ``(height, width)``.

    - ``resize``: ``"stretch"`` (fill the size), ``"letterbox"`` (keep the
      aspect, centre, pad with ``fill``), ``"crop"`` (shorter side to size,
      centre crop). Boxes go through the same transform, are clipped, and
      are dropped (and reported) when nothing is left of them.
    - ``filter``: ``"bilinear"`` (default), ``"nearest"``, ``"area"``,
      ``"lanczos"``; downscaling is antialiased.
    - ``channels``: 3 (RGB) or 1 (gray). EXIF orientation is applied; boxes
      are taken to be in the displayed orientation. Transparent pixels are
      composited over white.
    - ``storage``: ``"raw"`` (``uint8 (N, H, W, C)``, the fast path),
      ``"jpeg"`` (at ``quality``) or ``"png"``, one encoded image per sample.

    Per-channel mean and std of every stored pixel are computed in the same
    pass and stored as attributes. The file is written to a temporary file
    beside ``out`` and renamed only on success; an existing ``out`` is
    replaced only with ``force=True``. A sample that cannot be decoded is
    skipped and reported in ``PackReport.findings`` (``strict=True``: the
    pack fails). Releases the GIL; Ctrl-C stops it and leaves nothing behind.
    """
    resize = _choice("resize", resize, _RESIZE)
    filter = _choice("filter", filter, _FILTERS)
    storage = _choice("storage", storage, _STORAGE)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100; got {quality!r}")
    if not 0 <= fill <= 255:
        raise ValueError(f"fill must be between 0 and 255; got {fill!r}")
    manifest = source if isinstance(source, Manifest) else index(source, format, strict, max_pixels=max_pixels, workers=workers)
    report = _native.pack(
        manifest._inner,
        os.fspath(out),
        _size(size),
        resize,
        filter,
        channels,
        storage,
        quality,
        fill,
        workers,
        strict,
        force,
        int(max_pixels),
    )
    return report


def inspect(path: PathLike) -> Dict[str, Any]:
    """Describes a packed file: samples, shape, storage, classes with counts,
    boxes, mean/std, format version, size on disk."""
    return _native.inspect(os.fspath(path))


def preview(path: PathLike, out: PathLike = "preview.png", n: int = 64, seed: int = 0) -> List[int]:
    """Draws ``n`` packed samples (a seeded random choice) into a PNG grid at
    ``out``, with boxes and class names; returns the sample indices drawn."""
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}")
    return _native.preview(os.fspath(path), os.fspath(out), n, seed)
