"""The manifest: a dataset's high-level representation, and ``index``."""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Sequence, Tuple, Union, overload

from . import _checks, _native
from ._native import Finding, Sample
from ._progress import Bar

__all__ = [
    "Manifest",
    "index",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_SOURCE_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Images with more pixels than this are refused (``max_pixels=``): 100 megapixels.
DEFAULT_MAX_PIXELS: int = _native.DEFAULT_MAX_PIXELS
#: Image files larger than this are refused (``max_file_bytes=``): 1 GiB.
DEFAULT_MAX_FILE_BYTES: int = _native.DEFAULT_MAX_FILE_BYTES
#: CSV, COCO JSON and VOC XML files larger than this are refused (``max_source_bytes=``): 4 GiB.
DEFAULT_MAX_SOURCE_BYTES: int = _native.DEFAULT_MAX_SOURCE_BYTES
#: CSV rows and manifest lines longer than this are refused (``max_line_bytes=``): 16 MiB.
DEFAULT_MAX_LINE_BYTES: int = _native.DEFAULT_MAX_LINE_BYTES


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
    def load(cls, path: PathLike, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> "Manifest":
        """Reads a JSON-lines manifest written by :meth:`save` or ``stokehold index``.

        Every line is checked; an error names the line. A line longer than
        ``max_line_bytes`` is refused.
        """
        limit = _checks.integer("max_line_bytes", max_line_bytes, 1)
        return cls(_native.Manifest.load(os.fspath(path), limit))

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
        val = _checks.number("val", val, 0.0, 1.0)
        seed = _checks.integer("seed", seed, 0, 2**64 - 1)
        train, valid = self._inner.split(val, seed)
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
    *,
    format: str = "auto",
    strict: bool = False,
    classes: Optional[Sequence[str]] = None,
    image_root: Optional[PathLike] = None,
    num_threads: Optional[int] = None,
    progress: Optional[bool] = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Manifest:
    """Builds the manifest of a dataset.

    ``source`` is a class-per-folder tree (``root/<class>/.../<file>``), a CSV
    (``path,label[,x_min,y_min,x_max,y_max]``), a COCO instances JSON, a Pascal
    VOC folder, or a stokehold JSON-lines manifest; ``format="auto"`` tells
    them apart from the path (or name one of ``folder``, ``csv``, ``coco``,
    ``voc``, ``manifest``). Each image's width, height (as displayed: EXIF
    orientation applied) and format are read from its header, in parallel,
    without decoding pixels.

    Problems (missing or empty files, non-images, FIFOs and other files that
    are not regular files, images over ``max_pixels`` or ``max_file_bytes``,
    boxes outside the image or without area, unknown classes, duplicate
    paths, bad CSV rows) become :attr:`Manifest.findings`: the sample is
    skipped (or its box clipped or dropped) and indexing goes on. With
    ``strict=True`` any finding raises :class:`stokehold.StrictModeError`
    listing all of them.

    ``classes`` fixes the class order (other labels become findings);
    ``image_root`` is the folder relative image paths are resolved against;
    ``num_threads`` is the number of probing threads (default:
    ``STOKEHOLD_NUM_THREADS`` or the core count; at most 8 per core).
    ``progress``: a progress bar (tqdm when installed) on a terminal or in
    a notebook; ``False`` silences it, ``True`` forces it. The call releases
    the GIL and stops on Ctrl-C.
    """
    fmt = _checks.choice("format", format, ("auto", *_native.CHOICES["format"]))
    with Bar("indexing", progress) as callback:
        inner = _native.index(
            os.fspath(source),
            None if fmt == "auto" else fmt,
            bool(strict),
            None if classes is None else [str(c) for c in classes],
            None if image_root is None else os.fspath(image_root),
            _checks.optional_integer("num_threads", num_threads, 1),
            _checks.integer("max_pixels", max_pixels, 1),
            _checks.integer("max_file_bytes", max_file_bytes, 1),
            _checks.integer("max_source_bytes", max_source_bytes, 1),
            _checks.integer("max_line_bytes", max_line_bytes, 1),
            callback,
        )
    return Manifest(inner)
