"""stokehold: index, pack and feed image datasets that do not fit in memory.

>>> import stokehold
>>> manifest = stokehold.index("data/shapes/images")      # doctest: +SKIP
>>> train, val = manifest.split(val=0.1, seed=0)           # doctest: +SKIP
"""

from ._native import Box, Finding, Sample, __version__
from .errors import (
    EmptyDatasetError,
    LoaderClosedError,
    SampleError,
    InvalidArgumentError,
    InvalidFileError,
    InvalidSourceError,
    OutputExistsError,
    SampleIndexError,
    SourceNotFoundError,
    StokeholdError,
    StokeholdIOError,
    StrictModeError,
)
from .manifest import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SOURCE_BYTES,
    Manifest,
    index,
)
from .pack import CommitReport, PackReport, commit, inspect, pack, preview
from .dataset import Dataset, SkippedSample, reorder

__all__ = [
    "__version__",
    "index",
    "Dataset",
    "pack",
    "commit",
    "inspect",
    "preview",
    "Manifest",
    "PackReport",
    "CommitReport",
    "Sample",
    "Box",
    "Finding",
    "SkippedSample",
    "reorder",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_SOURCE_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "StokeholdError",
    "SourceNotFoundError",
    "StokeholdIOError",
    "InvalidSourceError",
    "InvalidArgumentError",
    "StrictModeError",
    "OutputExistsError",
    "EmptyDatasetError",
    "InvalidFileError",
    "SampleIndexError",
    "SampleError",
    "LoaderClosedError",
]
