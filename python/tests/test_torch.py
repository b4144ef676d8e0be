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

    ds = stokehold.Dataset(packed, batch_size=8, shuffle=False, data_format="channels_first")
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


DISTRIBUTED = """
import json, sys
import torch.distributed as dist
import stokehold

path, store, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
ds = stokehold.Dataset(path, batch_size=8, outputs="indices")  # no rank= or world_size=
print(json.dumps({"rank": ds._args["rank"], "world": ds._args["world_size"],
                  "indices": sorted(int(i) for b in ds for i in b)}))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_rank_and_world_size_from_torch_distributed(packed: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DISTRIBUTED, str(packed), str(store), str(rank)], stdout=subprocess.PIPE, text=True
        )
        for rank in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [(o["rank"], o["world"]) for o in outs] == [(0, 2), (1, 2)]
    a, b = set(outs[0]["indices"]), set(outs[1]["indices"])
    assert not (a & b) and a | b == set(range(SHAPES_N)), "disjoint shares that cover the dataset"
