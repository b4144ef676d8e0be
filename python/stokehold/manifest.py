"""The manifest: a dataset's high-level representation, and ``index``."""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Sequence, Tuple, Union, overload

from . import _native
from ._native import Finding, Sample

__all__ = ["Manifest", "index", "DEFAULT_MAX_PIXELS"]

PathLike = Union[str, "os.PathLike[str]"]

#: Images with more pixels than this are refused unless ``max_pixels`` says otherwise.
DEFAULT_MAX_PIXELS: int = _native.DEFAULT_MAX_PIXELS

_FORMATS = ("auto", "folder", "csv", "coco", "voc", "manifest")


class Manifest:
    """A dataset's classes and samples: image paths, class, size, format, boxes.

    Build one with :func:`stokehold.index` or :meth:`Manifest.load`. It is a
    read-only sequence of :class:`Sample`::

        manifest = stokehold.index("data/shapes/images")
        len(manifest), manifest.classes, manifest[0].path
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: _native.Manifest) -> None:
        self._inner = inner

    @classmethod
    def load(cls, path: PathLike) -> "Manifest":
        """Reads a JSON-lines manifest written by :meth:`save` or ``stokehold index``."""
        return cls(_native.Manifest.load(os.fspath(path)))

    def save(self, path: PathLike) -> None:
        """Writes the JSON-lines form to ``path`` (atomically: temporary file, then rename).

        Paths under the manifest's folder are written relative to it.
        """
        self._inner.save(os.fspath(path))

    @property
    def classes(self) -> List[str]:
        """Class names; ``sample.label`` indexes this list."""
        return self._inner.classes

    @property
    def findings(self) -> List[Finding]:
        """Problems met while indexing (empty for a loaded manifest)."""
        return self._inner.findings

    @property
    def source(self) -> Optional[Tuple[str, str]]:
        """``(format, path)`` of the source it was indexed from, if known."""
        return self._inner.source

    @property
    def num_boxes(self) -> int:
        """Total number of boxes."""
        return self._inner.num_boxes

    def class_counts(self) -> List[int]:
        """Number of samples per class, in :attr:`classes` order."""
        return self._inner.class_counts()

    def summary(self) -> str:
        """One line: samples, classes, boxes, and what was skipped or repaired."""
        return self._inner.summary()

    def split(self, val: float = 0.1, seed: int = 0) -> Tuple["Manifest", "Manifest"]:
        """``(train, val)``: each class gives ``round(n * val)`` samples to validation.

        The choice is a pure function of ``seed`` and the sample positions; both
        parts keep this manifest's order and classes.
        """
        train, valid = self._inner.split(float(val), int(seed))
        return Manifest(train), Manifest(valid)

    def __len__(self) -> int:
        return len(self._inner)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> List[Sample]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Sample, List[Sample]]:
        n = len(self._inner)
        if isinstance(index, slice):
            return [self._inner.sample(i) for i in range(*index.indices(n))]
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"sample {index} is out of range for {n} samples")
        return self._inner.sample(i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self._inner)):
            yield self._inner.sample(i)

    def __repr__(self) -> str:
        return f"<stokehold.Manifest {self.summary()}>"


def index(
    source: PathLike,
    format: str = "auto",
    strict: bool = False,
    *,
    classes: Optional[Sequence[str]] = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    image_root: Optional[PathLike] = None,
    workers: Optional[int] = None,
) -> Manifest:
    """Builds the manifest of a dataset.

    ``source`` is a class-per-folder tree (``root/<class>/.../<file>``), a CSV
    (``path,label[,x_min,y_min,x_max,y_max]``), a COCO instances JSON, a Pascal
    VOC folder, or a stokehold JSON-lines manifest; ``format="auto"`` tells
    them apart from the path. Each image's width, height and format are read
    from its header, in parallel, without decoding pixels.

    Problems (missing or empty files, non-images, images over ``max_pixels``,
    boxes outside the image or without area, unknown classes, duplicate
    paths) become :attr:`Manifest.findings`: the sample is skipped (or its box
    clipped or dropped) and indexing goes on. With ``strict=True`` any finding
    raises :class:`stokehold.StrictModeError` listing all of them.

    ``classes`` fixes the class order (other labels become findings);
    ``image_root`` is the folder relative image paths are resolved against;
    ``workers`` is the number of probing threads (default:
    ``STOKEHOLD_NUM_THREADS`` or the core count). The call releases the GIL and
    stops on Ctrl-C.
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}; got {format!r}")
    inner = _native.index(
        os.fspath(source),
        format=None if format == "auto" else format,
        strict=strict,
        classes=None if classes is None else [str(c) for c in classes],
        max_pixels=int(max_pixels),
        image_root=None if image_root is None else os.fspath(image_root),
        workers=workers,
    )
    return Manifest(inner)
