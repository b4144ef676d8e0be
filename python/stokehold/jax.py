"""JAX adapter: overlap host-to-device transfer with compute.

Iterating a :class:`stokehold.Dataset` yields numpy arrays ready for
``jax.device_put``; :func:`prefetch_to_device` keeps ``size`` batches on the
device ahead of the consumer.
"""

from __future__ import annotations

import collections
from typing import Any, Deque, Iterable, Iterator, Optional

try:
    import jax as _jax
except ImportError as e:  # pragma: no cover - exercised without jax
    raise ImportError("stokehold.jax needs JAX: pip install jax") from e

__all__ = ["prefetch_to_device"]


def prefetch_to_device(iterator: Iterable[Any], size: int = 2, device: Optional[Any] = None) -> Iterator[Any]:
    """Yields the batches of ``iterator`` already placed on ``device`` (default:
    JAX's first device), transferring ``size`` batches ahead."""
    if size < 1:
        raise ValueError(f"size must be at least 1; got {size}")
    queue: Deque[Any] = collections.deque()
    it = iter(iterator)

    def enqueue(n: int) -> None:
        for _ in range(n):
            try:
                batch = next(it)
            except StopIteration:
                return
            queue.append(_jax.device_put(batch, device))

    enqueue(size)
    while queue:
        yield queue.popleft()
        enqueue(1)
