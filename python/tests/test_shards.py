"""Datasets larger than one file: shards and their index, two-phase packing
(parts and commit), packing on Ray, and ranks that resume on another
number of ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import h5py
import numpy as np
import pytest

import stokehold

from conftest import SHAPES_N

STOKEHOLD = str(Path(sys.executable).parent / "stokehold")


def everything(source: Path, **kw: Any) -> List[np.ndarray]:
    """Every sample of `source` in order: uint8 pixels, labels, boxes, indices."""
    ds = stokehold.Dataset(source, batch_size=1000, shuffle=False, dtype="uint8", outputs=("images", "labels", "boxes", "indices"), **kw)
    return list(ds[0])


@pytest.fixture(scope="module")
def single(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "one.h5"
    stokehold.pack(shapes / "instances.json", out, size=(24, 32), progress=False)
    return out


@pytest.mark.parametrize("storage", ["raw", "jpeg"])
def test_a_sharded_dataset_is_the_same_data_as_one_file(shapes: Path, tmp_path: Path, storage: str) -> None:
    one = tmp_path / "one.h5"
    stokehold.pack(shapes / "instances.json", one, size=(24, 32), storage=storage, progress=False)
    out = tmp_path / "ds"
    report = stokehold.pack(shapes / "instances.json", out, size=(24, 32), storage=storage, samples_per_shard=25, progress=False)
    assert report.num_shards == 5 and report.num_samples == SHAPES_N
    names = sorted(os.listdir(out))
    assert names == ["dataset.json"] + [f"shard-{k:05}.h5" for k in range(5)]
    for a, b in zip(everything(out), everything(one)):
        np.testing.assert_array_equal(a, b)
    for source in (out, out / "dataset.json"):
        info = stokehold.inspect(source)
        assert info["num_samples"] == SHAPES_N and info["num_shards"] == 5
    single = stokehold.inspect(one)
    np.testing.assert_allclose(info["mean"], single["mean"], rtol=1e-12)
    np.testing.assert_allclose(info["std"], single["std"], rtol=1e-12)
    assert info["class_counts"] == single["class_counts"]
    # Each shard is a packed file h5py reads; the index addresses its samples.
    index = json.loads((out / "dataset.json").read_text())
    assert index["format"] == "stokehold-dataset" and len(index["shards"]) == 5
    s = index["shards"][1]
    with h5py.File(out / s["path"]) as f, open(out / s["path"], "rb") as raw:
        if storage == "raw":
            raw.seek(s["data_offset"] + 3 * s["sample_bytes"])
            assert raw.read(s["sample_bytes"]) == f["images"][3].tobytes()
        else:
            lo, hi = s["offsets"][3], s["offsets"][4]
            raw.seek(s["data_offset"] + lo)
            assert raw.read(hi - lo) == f["data"][f["offsets"][3] : f["offsets"][4]].tobytes()
    assert len(stokehold.preview(out, tmp_path / "p.png", n=9)) == 9


def test_shard_size_in_bytes_and_the_command_line(shapes: Path, tmp_path: Path, single: Path) -> None:
    out = tmp_path / "bybytes"
    # 24 × 32 × 3 = 2,304 bytes a sample: 10 kB shards hold 4 samples.
    run = subprocess.run([STOKEHOLD, "pack", str(shapes / "instances.json"), "-o", str(out), "--size", "24x32", "--shard-size", "10kB", "--quiet"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{SHAPES_N} samples in 30 shard(s)" in run.stdout
    for a, b in zip(everything(out), everything(single)):
        np.testing.assert_array_equal(a, b)
    again = subprocess.run([STOKEHOLD, "pack", str(shapes / "instances.json"), "-o", str(out), "--size", "8", "--shard-size", "10kB"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr
    text = subprocess.run([STOKEHOLD, "inspect", str(out)], capture_output=True, text=True, timeout=60).stdout
    assert "shards        30" in text


def test_parts_then_commit(shapes: Path, tmp_path: Path, single: Path) -> None:
    out = tmp_path / "parts"
    for i in (0, 2):
        stokehold.pack(shapes / "instances.json", out, size=(24, 32), part=(i, 3), samples_per_shard=16, progress=False)
    with pytest.raises(stokehold.InvalidFileError, match=r"1 of 3 parts are not complete: part-00001-of-00003 \(not started\)"):
        stokehold.commit(out)
    with pytest.raises(stokehold.InvalidFileError, match="not committed yet"):
        stokehold.Dataset(out)
    # A part that died half way: its folder, no record.
    (out / "part-00001-of-00003").mkdir()
    with pytest.raises(stokehold.InvalidFileError, match="started, not finished"):
        stokehold.commit(out)
    # A part packed with other options is refused, naming what differs.
    stokehold.pack(shapes / "instances.json", out, size=(16, 16), part=(1, 3), progress=False)
    with pytest.raises(stokehold.InvalidFileError, match="other options.*image_shape differs"):
        stokehold.commit(out)
    stokehold.pack(shapes / "instances.json", out, size=(24, 32), part=(1, 3), force=True, progress=False)
    report = stokehold.commit(out)
    assert report.num_samples == SHAPES_N
    for a, b in zip(everything(out), everything(single)):
        np.testing.assert_array_equal(a, b)
    # The command line does the same.
    run = subprocess.run([STOKEHOLD, "commit", str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and f"committed {SHAPES_N} samples" in run.stdout
    # Parts of different splits in one directory are refused.
    stokehold.pack(shapes / "instances.json", out, size=(24, 32), part=(0, 2), progress=False)
    with pytest.raises(stokehold.InvalidFileError, match="different splits"):
        stokehold.commit(out)


def test_a_replaced_shard_is_refused(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    stokehold.pack(shapes / "instances.json", out, size=(24, 32), samples_per_shard=40, progress=False)
    other = tmp_path / "other"
    stokehold.pack(shapes / "images", other, size=(16, 16), samples_per_shard=40, progress=False)
    (out / "shard-00001.h5").write_bytes((other / "shard-00001.h5").read_bytes())
    ds = stokehold.Dataset(out, batch_size=40, shuffle=False)
    ds.batch(0)
    with pytest.raises(stokehold.SampleError, match="shard-00001.h5.*replaced or damaged"):
        ds.batch(1)
    index = json.loads((out / "dataset.json").read_text())
    index["shards"][0]["labels"][0] = 99
    (out / "dataset.json").write_text(json.dumps(index))
    with pytest.raises(stokehold.InvalidFileError, match="label 99 is outside the 6 classes"):
        stokehold.Dataset(out)


@pytest.mark.slow
def test_ray_packs_the_same_dataset_on_a_local_ray_bound_to_loopback(shapes: Path, tmp_path: Path, single: Path) -> None:
    """A local Ray (2 CPUs, no dashboard), every listener on 127.0.0.1 (checked with ss), shut down after."""
    out = tmp_path / "ray"
    code = textwrap.dedent(
        f"""
        import json, subprocess, sys
        import stokehold.ray as sr
        sr.init_local(2)  # before anything imports ray
        import ray
        listeners = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
        mine = [l for l in listeners if any(w in l for w in ("ray", "gcs_server", "raylet", "python"))]
        report = sr.pack({str(shapes / "instances.json")!r}, {str(out)!r}, size=(24, 32), parts=3, samples_per_shard=20, progress=False)
        ray.shutdown()
        print(json.dumps({{"listeners": mine, "parts": report.parts, "samples": report.num_samples, "shards": report.num_shards}}))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout.splitlines()[-1])
    assert r["listeners"], "Ray's servers were found"
    for line in r["listeners"]:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")), line
    assert (r["parts"], r["samples"]) == (3, SHAPES_N)
    for a, b in zip(everything(out), everything(single)):
        np.testing.assert_array_equal(a, b)
    # No Ray process outlives the job.
    left = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout
    assert left.strip() == "", left


def test_ranks_resume_on_another_number_of_ranks(single: Path) -> None:
    """The order no longer depends on world_size: a state taken with 4
    ranks restores with 2 (or 1, or 8) and the rest of the epoch comes
    exactly once, in lockstep (equal batch counts)."""

    def ranks(world: int, **kw: Any) -> List[stokehold.Dataset]:
        return [stokehold.Dataset(single, batch_size=7, outputs="indices", seed=5, rank=r, world_size=world, **kw) for r in range(world)]

    four = ranks(4)
    assert len({len(d) for d in four}) == 1, "equal batch counts"
    seen: List[int] = []
    for _ in range(2):
        for d in four:
            seen += next(iter(d)).tolist()
    assert len(seen) == len(set(seen)) == 2 * 4 * 7
    states = [d.state_dict() for d in four]
    assert len({s["position"] for s in states}) == 1 and states[0]["position"] == 2 * 4 * 7
    unseen = set(range(SHAPES_N)) - set(seen)
    for world in (2, 1, 8):
        rest: List[int] = []
        counts = set()
        for d in ranks(world):
            d.load_state_dict(states[3])  # any one rank's state
            batches = [b.tolist() for b in d]
            counts.add(len(batches))
            rest += [i for b in batches for i in b]
        assert len(counts) == 1, "the resumed ranks step in lockstep"
        assert unseen <= set(rest), "nothing left out"
        assert all(rest.count(i) == 1 for i in unseen), "nothing twice"
        assert len(rest) - len(unseen) < world, "only padding (to equal shares) repeats a sample"
    # A state of another order is refused, naming the field.
    with pytest.raises(stokehold.InvalidArgumentError, match=r"state\['seed'\]"):
        stokehold.Dataset(single, seed=6).load_state_dict(states[0])


def test_the_same_world_size_resumes_as_if_it_had_not_stopped(single: Path) -> None:
    full = stokehold.Dataset(single, batch_size=6, outputs="indices", rank=1, world_size=3, seed=2)
    expected = [b.tolist() for b in full]
    part = stokehold.Dataset(single, batch_size=6, outputs="indices", rank=1, world_size=3, seed=2)
    it = iter(part)
    got = [next(it).tolist() for _ in range(2)]
    state = part.state_dict()
    resumed = stokehold.Dataset(single, batch_size=6, outputs="indices", rank=1, world_size=3, seed=2)
    resumed.load_state_dict(state)
    got += [b.tolist() for b in resumed]
    assert got == expected
