"""Argument checks done in Python, raising the same exceptions as Rust's."""

from __future__ import annotations

import math
import operator
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import InvalidArgumentError


#: The largest integer a native call takes by default (a signed 64-bit int).
INT_MAX = 2**63 - 1


def integer(name: str, value: Any, low: int = 0, high: Optional[int] = INT_MAX) -> int:
    """``value`` as an int in ``[low, high]``; the error names ``name``."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None
    if v < low or (high is not None and v > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(f"{name} must be {bound}, got {v}")
    return v


def optional_integer(name: str, value: Any, low: int = 0, high: Optional[int] = INT_MAX) -> Optional[int]:
    return None if value is None else integer(name, value, low, high)


def number(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    v = float(value)
    if not math.isfinite(v) or v < low or v > high:
        raise InvalidArgumentError(f"{name} must be a finite number between {low} and {high}, got {value!r}")
    return v


def size(name: str, value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``(height, width)`` from an int or a pair, each 1 to 16384."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an int or a (height, width) pair, got {value!r}")
    if isinstance(value, int):
        v = integer(name, value, 1, 16384)
        return (v, v)
    try:
        h, w = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an int or a (height, width) pair, got {value!r}") from None
    return (integer(f"{name}[0] (height)", h, 1, 16384), integer(f"{name}[1] (width)", w, 1, 16384))


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of the option words the native module defines (``_native.CHOICES``)."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def is_remote(path: Any) -> bool:
    """An address in object storage (``s3://bucket/prefix/``)."""
    return isinstance(path, str) and path.startswith("s3://")


def output_storage(out: str, options: Optional[Mapping[str, Any]]) -> Tuple[bool, Optional[List[Tuple[str, str]]]]:
    """Whether the output ``out`` is in object storage, and its
    ``storage_options`` as pairs (refused for a local output)."""
    remote = is_remote(out)
    pairs = storage_options(options)
    if pairs is not None and not remote:
        raise InvalidArgumentError("storage_options: these are for an output in object storage (s3://...)")
    return remote, pairs


def storage_options(options: Optional[Mapping[str, Any]]) -> Optional[List[Tuple[str, str]]]:
    """``storage_options`` as pairs of strings (``True`` as ``"true"``)."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f"storage_options must be a dict of settings, got {type(options).__name__}")
    pairs = []
    for k, v in options.items():
        if not isinstance(k, str) or v is None:
            raise InvalidArgumentError(f"storage_options: {k!r} must be a name with a value, got {v!r}")
        pairs.append((k, str(v).lower() if isinstance(v, bool) else str(v)))
    return pairs
