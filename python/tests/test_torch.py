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
print(json.dumps({"rank": ds.rank, "world": ds.world_size,
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


ELASTIC = """
import json, sys
import torch, torch.distributed as dist
import stokehold

path, store, rank, world, phase = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
ds = stokehold.Dataset(path, batch_size=5, outputs="indices", seed=11)
if phase == "first":
    it = iter(ds)
    seen = [int(i) for _ in range(3) for i in next(it)]       # three steps, then the job stops
    state = ds.state_dict()
    batches = 3
else:
    state = json.loads(sys.argv[6])
    ds.load_state_dict(state)                                 # the state of one rank of the old job
    seen = [int(i) for b in ds for i in b]
    batches = len(ds)
counts = [torch.zeros(1) for _ in range(world)]
dist.all_gather(counts, torch.tensor([float(batches)]))       # lockstep: every rank the same number of batches
print(json.dumps({"rank": ds.rank, "seen": seen, "state": state, "counts": [int(c.item()) for c in counts]}))
dist.destroy_process_group()
"""


def run_ranks(packed: Path, store: Path, world: int, phase: str, *extra: str) -> list:
    import json
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ELASTIC, str(packed), str(store), str(r), str(world), phase, *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in range(world)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return outs


@pytest.mark.slow
def test_a_job_of_four_ranks_resumes_on_two(packed: Path, tmp_path: Path) -> None:
    """torch.distributed (gloo, 4 processes, then 2): shares are disjoint,
    the ranks step in lockstep, and a state taken at 4 ranks restores at 2,
    delivering the rest of the epoch exactly once."""
    import json

    first = run_ranks(packed, tmp_path / "store4", 4, "first")
    assert all(o["counts"] == [3] * 4 for o in first)
    seen = [i for o in first for i in o["seen"]]
    assert len(seen) == len(set(seen)) == 4 * 3 * 5, "disjoint shares"
    states = [o["state"] for o in first]
    assert len({s["position"] for s in states}) == 1, "one position for the whole job"
    second = run_ranks(packed, tmp_path / "store2", 2, "second", json.dumps(states[2]))
    counts = second[0]["counts"]
    assert counts[0] == counts[1], "lockstep after the resume too"
    rest = [i for o in second for i in o["seen"]]
    unseen = set(range(SHAPES_N)) - set(seen)
    assert unseen <= set(rest) and all(rest.count(i) == 1 for i in unseen), "the rest exactly once"
    assert len(rest) - len(unseen) < 2, "only padding to equal shares repeats"
