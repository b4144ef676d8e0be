"""Soak: many epochs over a small packed file with shuffling and
augmentation, and many open/close cycles, watching resident memory, open
file descriptors and threads.

    python benchmarks/soak.py [--epochs 200] [--cycles 500] [--json out.json]

Prints one JSON object: the baseline after warm-up, the figures after the
run, and their growth. The test suite runs it with fewer epochs
(python/tests/test_soak.py) and checks that nothing grows.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def snapshot() -> Dict[str, float]:
    return {"rss_mb": round(rss_mb(), 1), "fds": fds(), "threads": threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--cycles", type=int, default=500)
    p.add_argument("--n", type=int, default=256, help="samples in the packed file")
    p.add_argument("--json", type=Path)
    a = p.parse_args()

    import h5py

    # A Dataset becomes a Keras PyDataset when Keras is importable; Keras's
    # backend (TensorFlow by default) would dominate the memory measured.
    import importlib.util

    if importlib.util.find_spec("keras") is not None:
        os.environ.setdefault("KERAS_BACKEND", "numpy")
    import stokehold

    with tempfile.TemporaryDirectory() as tmp:
        # A packed file made directly (no image decoding needed): random pixels, boxes, labels.
        src = Path(tmp) / "imgs"
        rng = np.random.default_rng(0)
        from PIL import Image

        for c in range(4):
            (src / f"c{c}").mkdir(parents=True)
        for i in range(a.n):
            Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(src / f"c{i % 4}" / f"{i}.png")
        packed = Path(tmp) / "soak.h5"
        stokehold.pack(src, packed, size=(32, 32), progress=False)
        with h5py.File(packed) as f:
            assert f.attrs["num_samples"] == a.n

        def epochs(ds: "stokehold.Dataset", k: int) -> int:
            seen = 0
            for _ in range(k):
                for x, y in ds:
                    seen += x.shape[0]
                ds.on_epoch_end()
            return seen

        aug = {"hflip": 0.5, "random_resized_crop": True}
        ds = stokehold.Dataset(packed, batch_size=16, augment=aug, num_threads=2, seed=1)
        epochs(ds, 5)  # warm-up: buffers, thread-local scratch, allocator arenas
        for _ in range(20):  # warm up open/close too
            stokehold.Dataset(packed, batch_size=16, num_threads=2).close()
        before = snapshot()
        start = time.monotonic()
        seen = epochs(ds, a.epochs)
        epoch_seconds = time.monotonic() - start
        after_epochs = snapshot()
        for _ in range(a.cycles):
            d = stokehold.Dataset(packed, batch_size=16, num_threads=2)
            d[0]
            d.close()
        after = snapshot()
        ds.close()
    result = {
        "epochs": a.epochs,
        "samples_seen": seen,
        "seconds": round(epoch_seconds, 1),
        "open_close_cycles": a.cycles,
        "before": before,
        "after_epochs": after_epochs,
        "after_cycles": after,
        "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1),
        "fd_growth": after["fds"] - before["fds"],
        "thread_growth": after["threads"] - before["threads"],
    }
    print(json.dumps(result))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
