"""Keras model.fit fed by stokehold versus a Pillow-based PyDataset, one run.

    python benchmarks/keras_bench.py [--n 2000] [--out bench-out] [--epochs 2]

A tiny model (global average pooling + dense) on the photo corpus at
224x224, Keras 3 on the jax backend, batches of 64. Five feeders, each in its
own process so that its peak RSS is its own: one preallocated batch (what
Keras itself can consume), stokehold on the packed file,
stokehold just in time from the JPEGs, and a Pillow PyDataset (decode,
antialiased bilinear resize, numpy normalize) with workers=2 as threads and
as processes. The last epoch is timed (the first one compiles).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CHILD = r'''
import json, os, sys, time
os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np, keras
from PIL import Image
import stokehold

kind, packed, manifest, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
info = stokehold.inspect(packed)
mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
m = stokehold.Manifest.load(manifest)
paths, labels = [s.path for s in m], np.array([s.label for s in m], np.int64)

class PillowSequence(keras.utils.PyDataset):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.order = np.random.default_rng(0).permutation(len(paths))
    def __len__(self):
        return -(-len(paths) // 64)
    def __getitem__(self, i):
        idx = self.order[i * 64:(i + 1) * 64]
        x = np.empty((len(idx), 224, 224, 3), np.float32)
        for k, j in enumerate(idx):
            with Image.open(paths[j]) as im:
                x[k] = (np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32) - mean) / std
        return x, labels[idx]

class Constant(keras.utils.PyDataset):
    """No loading at all: one preallocated batch, the ceiling of Keras itself."""
    x = np.random.default_rng(0).standard_normal((64, 224, 224, 3), np.float32)
    def __len__(self):
        return -(-len(paths) // 64)
    def __getitem__(self, i):
        return self.x, labels[:64]

if kind == "keras-ceiling":
    ds = Constant()
elif kind.startswith("stokehold-packed"):
    ds = stokehold.Dataset(packed, batch_size=64, workers=2)
elif kind == "stokehold-jit":
    ds = stokehold.Dataset(manifest, batch_size=64, size=224, workers=2, mean=info["mean"], std=info["std"])
elif kind == "pillow-threads":
    ds = PillowSequence(workers=2, use_multiprocessing=False)
else:
    ds = PillowSequence(workers=2, use_multiprocessing=True)

model = keras.Sequential([keras.Input((224, 224, 3)), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(len(m.classes), activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
times = []
class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)
class Sync(keras.callbacks.Callback):
    """A per-batch callback: Keras then waits for each step, so jax's
    asynchronous dispatch cannot hold many input batches at once."""
    def on_train_batch_end(self, batch, logs=None):
        pass
callbacks = [Timer()] + ([Sync()] if kind.endswith("-sync") else [])
model.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks)
print(json.dumps({"images_per_s": len(paths) / times[-1], "epoch_s": times[-1]}))
'''


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    parents = {}
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total = 0
    for pid in rss:
        p = pid
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += rss[pid]
    return total / 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", default="bench-out")
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    from photos import indexed_and_packed

    out = Path(a.out)
    manifest, packed = indexed_and_packed(out, a.n)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    results = {}
    kinds = ("keras-ceiling", "stokehold-packed", "stokehold-packed-sync", "stokehold-jit", "pillow-threads",
             "pillow-processes")
    for kind in kinds:
        t = time.perf_counter()
        log = out / f"keras-{kind}.out"
        with open(log, "w") as stdout:
            proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(packed), str(manifest), str(a.epochs)],
                                    stdout=stdout, env=env)
            peak = 0.0
            while proc.poll() is None:
                # Sum over the process tree: Keras's multiprocessing workers count too.
                peak = max(peak, tree_rss_mb(proc.pid))
                time.sleep(0.2)
        if proc.returncode != 0:
            raise SystemExit(f"{kind} failed (see {log})")
        result = json.loads(log.read_text().strip().splitlines()[-1])
        result["wall_s"] = time.perf_counter() - t
        result["peak_rss_mb"] = peak
        results[kind] = result
        print(f"{kind:>17}: {result['images_per_s']:7.0f} images/s (epoch {result['epoch_s']:.1f}s),"
              f" peak RSS {peak:.0f} MB (process tree, sampled every 0.2 s)", flush=True)
    base_t, base_p = results["pillow-threads"]["images_per_s"], results["pillow-processes"]["images_per_s"]
    best = max(base_t, base_p)
    for kind in ("stokehold-packed", "stokehold-jit"):
        r = results[kind]["images_per_s"]
        print(f"{kind}: {r / base_t:.1f}x Pillow threads, {r / base_p:.1f}x Pillow processes, {r / best:.1f}x the better")
    (out / "keras_bench.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
