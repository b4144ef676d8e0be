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
from .manifest import DEFAULT_MAX_PIXELS, Manifest, index
from .pack import PackReport, inspect, pack, preview
from .dataset import Dataset

__all__ = [
    "__version__",
    "index",
    "Dataset",
    "pack",
    "inspect",
    "preview",
    "Manifest",
    "PackReport",
    "Sample",
    "Box",
    "Finding",
    "DEFAULT_MAX_PIXELS",
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
