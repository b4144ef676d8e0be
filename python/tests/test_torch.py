"""PyTorch: tensors without a copy; DataLoader workers read disjoint shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stokehold

from conftest import SHAPES_N

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def packed(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("torch") / "shapes32.h5"
    stokehold.pack(shapes / "instances.json", out, size=32)
    return out


def test_tensors_share_the_batch_memory(packed: Path) -> None:
    from stokehold.torch import to_torch

    ds = stokehold.Dataset(packed, batch_size=8, shuffle=False, layout="channels_first")
    x, y = next(iter(ds.torch()))
    assert isinstance(x, torch.Tensor) and x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    images, labels = ds[0]
    tensor, _ = to_torch((images, labels))
    assert tensor.data_ptr() == images.ctypes.data, "the tensor is the batch's own memory"
    assert type(images.base).__name__ == "PixelBuffer"


@pytest.mark.slow
@pytest.mark.parametrize("context,num_workers", [("fork", 2), ("spawn", 2), ("fork", 1)])
def test_dataloader_workers_read_every_sample_once(packed: Path, context: str, num_workers: int) -> None:
    ds = stokehold.Dataset(packed, batch_size=8, outputs="indices", shard="drop")
    tds = ds.torch()
    loader = torch.utils.data.DataLoader(
        tds, batch_size=None, num_workers=num_workers, multiprocessing_context=context
    )
    orders = []
    for epoch in range(2):
        tds.set_epoch(epoch)
        seen = np.concatenate([b.numpy() for b in loader])
        assert len(seen) == len(set(seen.tolist())), "no sample twice"
        assert len(seen) == SHAPES_N, "none lost (120 samples split evenly over 2 workers)"
        orders.append(sorted(seen[:8].tolist()))
    assert orders[0] != orders[1], "set_epoch gives each epoch its own order"


def test_rank_and_world_size_from_the_arguments(packed: Path) -> None:
    shares = [
        {int(i) for b in stokehold.Dataset(packed, batch_size=8, outputs="indices", rank=r, world_size=3) for i in b}
        for r in range(3)
    ]
    assert not (shares[0] & shares[1]) and not (shares[1] & shares[2])
    assert set().union(*shares) == set(range(SHAPES_N))
