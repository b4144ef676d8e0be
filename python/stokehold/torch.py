"""PyTorch adapter: ``Dataset.torch()``.

``DataLoader(ds.torch(), batch_size=None, num_workers=N)`` works with fork
and spawn: each worker process re-opens the file from the pickled dataset
(no HDF5 handle crosses a fork) and reads a disjoint share
(``Dataset.shard(worker, N)``), so no sample is read twice. DataLoader makes
its workers anew each epoch from the parent's copy, so with ``num_workers >
0`` call ``set_epoch(e)`` before each epoch (as with torch's
``DistributedSampler``) to get that epoch's order. Uses only the Dataset's
public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from .dataset import Dataset

try:
    import torch as _torch
except ImportError as e:  # pragma: no cover - exercised without torch
    raise ImportError("stokehold.torch needs PyTorch: pip install torch") from e

__all__ = ["TorchDataset", "to_torch"]


def to_torch(structure: Any) -> Any:
    """numpy arrays in a batch structure to torch tensors (sharing memory)."""
    if isinstance(structure, dict):
        return {k: to_torch(v) for k, v in structure.items()}
    if isinstance(structure, tuple):
        return tuple(to_torch(v) for v in structure)
    return _torch.from_numpy(structure)


class TorchDataset(_torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """An iterable of torch tensor batches over one epoch at a time."""

    def __init__(self, dataset: "Dataset") -> None:
        super().__init__()
        self.dataset = dataset
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """The epoch that worker processes read next (``num_workers > 0``)."""
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        info = _torch.utils.data.get_worker_info()
        ds = self.dataset
        if info is not None:
            # Several worker processes are the parallelism: one loader thread each.
            ds = ds.shard(info.id, info.num_workers, num_threads=1 if info.num_workers > 1 else None)
            ds.set_epoch(self._epoch)
        for batch in ds:
            yield to_torch(batch)
        if info is None:
            ds.on_epoch_end()
