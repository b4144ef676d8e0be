"""Keras model.fit fed by stokehold versus a Pillow-based PyDataset, one run.

    python benchmarks/keras_bench.py [--n 2000] [--out bench-out] [--backend jax] [--dtype float32 uint8]

A tiny model (global average pooling + dense) on the photo corpus at
224x224, Keras 3 (jax backend by default), batches of 64. Five feeders, each
in its own process so that its peak RSS is its own: one preallocated batch
(what Keras itself can consume), stokehold on the packed file, stokehold
just in time from the JPEGs, and a Pillow PyDataset (decode, antialiased
bilinear resize) with workers=2 as threads and as processes, and with
threads filling 64-byte aligned arrays (as stokehold's are: jax then takes
a batch without copying it). Ratios are against the best Pillow feeder.

Two batch types, each with its own model, the same for every feeder:
``float32`` batches normalized on the host (the Pillow feeder normalizes
with numpy), and ``uint8`` batches that the model casts and normalizes
itself (after the pooling, which is linear, so the result is the same).
One epoch warms up (the first one compiles); the next three are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CHILD = r'''
import json, sys, time
import numpy as np, keras
from PIL import Image
import stokehold

kind, dtype, packed, manifest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
WARMUP, TIMED = 1, 3
info = stokehold.inspect(packed)
mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
m = stokehold.Manifest.load(manifest)
paths, labels = [s.path for s in m], np.array([s.label for s in m], np.int64)
host_normalize = dtype == "float32"

def aligned_empty(shape, dtype):
    """An array on a 64-byte boundary (np.empty of this size starts 16 bytes
    past a page boundary, and jax copies such an array when given one)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n].view(dtype).reshape(shape)

class PillowSequence(keras.utils.PyDataset):
    def __init__(self, aligned=False, **kw):
        super().__init__(**kw)
        self.order = np.random.default_rng(0).permutation(len(paths))
        self.empty = aligned_empty if aligned else np.empty
    def __len__(self):
        return -(-len(paths) // 64)
    def __getitem__(self, i):
        idx = self.order[i * 64:(i + 1) * 64]
        x = self.empty((len(idx), 224, 224, 3), dtype)
        for k, j in enumerate(idx):
            with Image.open(paths[j]) as im:
                pixels = np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR))
            x[k] = (pixels.astype(np.float32) - mean) / std if host_normalize else pixels
        return x, labels[idx]

class Constant(keras.utils.PyDataset):
    """No loading at all: one preallocated batch, the ceiling of Keras itself."""
    def __init__(self):
        super().__init__()
        self.x = aligned_empty((64, 224, 224, 3), dtype)
        self.x[...] = np.random.default_rng(0).integers(0, 256, self.x.shape)
    def __len__(self):
        return -(-len(paths) // 64)
    def __getitem__(self, i):
        return self.x, labels[:64]

if kind == "keras-ceiling":
    ds = Constant()
elif kind == "stokehold-packed":
    ds = stokehold.Dataset(packed, batch_size=64, workers=2, dtype=dtype, normalize=host_normalize)
elif kind == "stokehold-jit":
    ds = stokehold.Dataset(manifest, batch_size=64, size=224, workers=2, dtype=dtype, normalize=host_normalize,
                           mean=info["mean"], std=info["std"])
elif kind == "pillow-threads":
    ds = PillowSequence(workers=2, use_multiprocessing=False)
elif kind == "pillow-threads-aligned":
    ds = PillowSequence(aligned=True, workers=2, use_multiprocessing=False)
else:
    ds = PillowSequence(workers=2, use_multiprocessing=True)

inputs = keras.Input((224, 224, 3), dtype=dtype)
x = keras.layers.GlobalAveragePooling2D()(keras.ops.cast(inputs, "float32"))
if not host_normalize:
    x = keras.layers.Normalization(mean=mean, variance=std ** 2)(x)
model = keras.Model(inputs, keras.layers.Dense(len(m.classes), activation="softmax")(x))
model.compile("adam", "sparse_categorical_crossentropy")
times, cpu = [], []
class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t, self.c = time.perf_counter(), time.process_time()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)
        cpu.append(time.process_time() - self.c)
model.fit(ds, epochs=WARMUP + TIMED, verbose=0, callbacks=[Timer()])
timed, timed_cpu = sum(times[WARMUP:]), sum(cpu[WARMUP:])
# CPU time of this process (not of Keras's worker processes) per image, and cores busy.
print(json.dumps({"images_per_s": TIMED * len(paths) / timed, "epoch_s": [round(t, 2) for t in times],
                  "cpu_ms_per_image": 1e3 * timed_cpu / (TIMED * len(paths)), "cores_busy": timed_cpu / timed}))
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


def run_child(kind: str, dtype: str, packed: Path, manifest: Path, log: Path, env: dict) -> dict:
    """One feeder in its own process: its images/s and its process tree's peak RSS."""
    with open(log, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, dtype, str(packed), str(manifest)],
                                stdout=stdout, env=env)
        peak = 0.0
        while proc.poll() is None:
            # Sum over the process tree: Keras's multiprocessing workers count too.
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed (see {log})")
    result = json.loads(log.read_text().strip().splitlines()[-1])
    result["peak_rss_mb"] = peak
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", default="bench-out")
    p.add_argument("--backend", default="jax", choices=("jax", "torch", "tensorflow"))
    p.add_argument("--dtype", nargs="+", default=["float32", "uint8"], choices=("float32", "uint8"))
    p.add_argument("--repeats", type=int, default=3, help="rounds over all feeders, alternating; medians reported")
    a = p.parse_args()
    from photos import indexed_and_packed

    out = Path(a.out)
    manifest, packed = indexed_and_packed(out, a.n)
    env = {**os.environ, "KERAS_BACKEND": a.backend}
    pillow = ("pillow-threads", "pillow-threads-aligned", "pillow-processes")
    kinds = ("keras-ceiling", "stokehold-packed", "stokehold-jit") + pillow
    runs: dict = {d: {k: [] for k in kinds} for d in a.dtype}
    print(f"Keras {a.backend} backend, {a.n} photos at 224x224, batches of 64; images/s over 3 epochs after 1;"
          f" {a.repeats} rounds, alternating", flush=True)
    for round_ in range(a.repeats):
        for dtype in a.dtype:
            for kind in kinds:
                log = out / f"keras-{a.backend}-{dtype}-{kind}.out"
                r = run_child(kind, dtype, packed, manifest, log, env)
                runs[dtype][kind].append(r)
                print(f"  round {round_ + 1} {dtype:>7} {kind:>22}: {r['images_per_s']:6.0f} images/s,"
                      f" peak RSS {r['peak_rss_mb']:5.0f} MB, {r['cpu_ms_per_image']:.2f} CPU ms/image"
                      f" ({r['cores_busy']:.2f} cores)", flush=True)
    summary: dict = {}
    for dtype in a.dtype:
        how = "normalized on the host" if dtype == "float32" else "normalized in the model"
        print(f"{dtype} batches ({how}), median of {a.repeats} rounds (range):")
        med = {}
        for kind in kinds:
            rates = sorted(r["images_per_s"] for r in runs[dtype][kind])
            med[kind] = statistics.median(rates)
            peak = max(r["peak_rss_mb"] for r in runs[dtype][kind])
            cpu = statistics.median(r["cpu_ms_per_image"] for r in runs[dtype][kind])
            print(f"  {kind:>22}: {med[kind]:6.0f} images/s ({rates[0]:.0f}-{rates[-1]:.0f}),"
                  f" peak RSS up to {peak:5.0f} MB, {cpu:.2f} CPU ms/image")
        best = max(med[k] for k in pillow)
        ratios = {}
        for kind in ("keras-ceiling", "stokehold-packed", "stokehold-jit"):
            # Ratios within each round (same conditions), then their median.
            per_round = sorted(
                runs[dtype][kind][i]["images_per_s"]
                / max(runs[dtype][k][i]["images_per_s"] for k in pillow)
                for i in range(a.repeats)
            )
            ratios[kind] = per_round
            print(f"  {kind}: {med[kind] / best:.1f}x the best Pillow feeder"
                  f" (per round: {', '.join(f'{x:.1f}' for x in per_round)})")
        summary[dtype] = {"median_images_per_s": med, "ratios_per_round": ratios, "runs": runs[dtype]}
    (out / f"keras_bench_{a.backend}.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
