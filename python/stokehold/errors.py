"""The exceptions stokehold raises.

Every error derives from :class:`StokeholdError`, and also from the built-in
exception a Python user would expect (``ValueError``, ``FileNotFoundError``,
``OSError``), so existing ``except`` clauses keep working. Messages name the
file, line, sample or byte offset concerned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from ._native import Finding

__all__ = [
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


class StokeholdError(Exception):
    """Base class of every stokehold error."""


class SourceNotFoundError(StokeholdError, FileNotFoundError):
    """A source, manifest or image path does not exist."""


class StokeholdIOError(StokeholdError, OSError):
    """Reading or writing a file failed (permissions, disk full, I/O error)."""


class InvalidSourceError(StokeholdError, ValueError):
    """A source or manifest is not valid for its format (bad JSON, missing column…)."""


class InvalidArgumentError(StokeholdError, ValueError):
    """An argument is out of its range or names something unknown."""


class StrictModeError(StokeholdError, ValueError):
    """``strict=True`` and problems were found; ``.findings`` lists them all."""

    findings: List["Finding"]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.findings = []


class OutputExistsError(StokeholdError, FileExistsError):
    """The output file exists and ``force=True`` was not given."""


class EmptyDatasetError(StokeholdError, ValueError):
    """No sample could be packed; ``.findings`` says why for each."""

    findings: List["Finding"]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.findings = []


class InvalidFileError(StokeholdError, ValueError):
    """A file is not a valid stokehold packed file (or is of a newer format version)."""


class SampleIndexError(StokeholdError, IndexError):
    """A sample index past the end of the data."""


class SampleError(StokeholdError, ValueError):
    """A sample could not be read or decoded while loading; the message names it."""


class LoaderClosedError(StokeholdError, RuntimeError):
    """The dataset's loader was closed."""
