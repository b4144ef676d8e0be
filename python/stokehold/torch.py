"""PyTorch adapter: ``Dataset.torch()``.

``DataLoader(ds.torch(), batch_size=None, num_workers=N)`` works with fork
and spawn: each worker process re-opens the file from the pickled arguments
(no HDF5 handle crosses a fork) and reads a disjoint share (rank
``rank * N + worker``, world ``world_size * N``), so no sample is read twice.
DataLoader makes its workers anew each epoch from the parent's copy, so with
``num_workers > 0`` call ``set_epoch(e)`` before each epoch (as with torch's
``DistributedSampler``) to get that epoch's order.
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
            a = ds._args
            ds = ds._with(
                rank=a["rank"] * info.num_workers + info.id,
                world_size=a["world_size"] * info.num_workers,
                # Several worker processes are the parallelism: one loader thread each.
                workers=1 if info.num_workers > 1 else a["workers"],
                epoch=self._epoch,
            )
        for batch in ds:
            yield to_torch(batch)
        if info is None:
            ds.on_epoch_end()
