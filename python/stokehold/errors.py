"""The exceptions stokehold raises.

Every error derives from :class:`StokeholdError`, and also from the built-in
exception a Python user would expect (``ValueError``, ``FileNotFoundError``,
``OSError``, ``IndexError``), so existing ``except`` clauses keep working.
Messages name the file, line, sample, byte offset or parameter concerned,
and the exceptions carry it as data:

- ``SourceNotFoundError``, ``StokeholdIOError``, ``OutputExistsError`` (OS
  errors): ``.filename`` and ``.errno``, as any ``OSError``;
- ``SampleError``: ``.path`` (the image or packed file) and ``.index``
  (the sample); ``SampleIndexError``: ``.index``;
- ``InvalidSourceError``: ``.filename`` and, for a manifest, ``.line``;
  ``InvalidFileError``: ``.filename``;
- ``StrictModeError`` and ``EmptyDatasetError``: ``.findings``, every
  problem found.

The classes are defined by the native module (so that the Rust code that
raises them names them at compile time) and re-exported here.
"""

from __future__ import annotations

from ._native import (
    EmptyDatasetError,
    InvalidArgumentError,
    InvalidFileError,
    InvalidSourceError,
    LoaderClosedError,
    OutputExistsError,
    SampleError,
    SampleIndexError,
    SourceNotFoundError,
    StokeholdError,
    StokeholdIOError,
    StrictModeError,
)

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
