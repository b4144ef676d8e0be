"""Loader benchmark: stokehold's loader against memory copy and h5py, one run.

    python benchmarks/loader_bench.py [--n 2000] [--workers 2] [--out bench-out]

Packs the photo corpus (benchmarks/photos.py) to 224x224 raw, then runs
crates/loader/examples/loader_bench (memory-copy bandwidth, packed float32
and uint8 batches of 64, just-in-time scaling) and, in the same run, h5py
reading the same file in batches of 64 (uint8, and with a numpy normalize).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from photos import indexed_and_packed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def h5py_rates(path: Path) -> dict:
    """Images/s of h5py reading batches of 64, three ways, median of 3."""
    with h5py.File(path, "r") as f:
        ds = f["images"]
        n = ds.shape[0]
        mean = f.attrs["mean"].astype(np.float32)
        std = f.attrs["std"].astype(np.float32)
        perm = np.random.default_rng(0).permutation(n)
        ways = {
            # Contiguous slices in file order: h5py's best case (no shuffle).
            "sequential": lambda i: ds[i : i + BATCH],
            # Shuffled batches as one read: h5py needs increasing indices.
            "shuffled": lambda i: ds[np.sort(perm[i : i + BATCH])],
            # Shuffled batches, one read per sample, as a Sequence often does.
            "shuffled_per_sample": lambda i: np.stack([ds[j] for j in perm[i : i + BATCH]]),
            # Contiguous slices normalized to float32 with numpy.
            "sequential_normalized": lambda i: (ds[i : i + BATCH].astype(np.float32) - mean) / std,
        }
        rates = {}
        for name, read in ways.items():
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                for i in range(0, n, BATCH):
                    read(i)
                runs.append(n / (time.perf_counter() - t))
            rates[name] = statistics.median(runs)
    return rates


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="bench-out")
    a = p.parse_args()
    out = Path(a.out)
    manifest, packed = indexed_and_packed(out, a.n)
    exe = ROOT / "target" / "release" / "examples" / "loader_bench"
    text = subprocess.run([str(exe), str(packed), str(manifest), str(a.workers)], capture_output=True, text=True,
                          check=True).stdout
    r = dict(line.split(" ", 1) for line in text.strip().splitlines())
    h5 = h5py_rates(packed)
    w = a.workers
    f32_gbps = float(r["packed_f32_gbps"])
    copy = float(r[f"memcpy_gbps_{w}"])
    print(f"packed file: {packed} ({r['samples']} samples, 224x224x3 raw), batches of {BATCH}, {w} workers")
    print(f"memory copy, same output bytes: {float(r['memcpy_gbps_1']):.2f} GB/s (1 thread), {copy:.2f} GB/s ({w} threads)")
    print(f"stokehold float32 normalized: {float(r['packed_f32_images_per_s']):8.0f} images/s = {f32_gbps:.2f} GB/s"
          f" = {f32_gbps / copy:.0%} of the {w}-thread copy")
    ours_u8 = float(r["packed_u8_images_per_s"])
    ours_seq = float(r["packed_u8_sequential_images_per_s"])
    print(f"stokehold uint8, shuffled:    {ours_u8:8.0f} images/s")
    print(f"stokehold uint8, in order:    {ours_seq:8.0f} images/s")
    print(f"h5py uint8, shuffled batches (ds[sorted idx]):   {h5['shuffled']:8.0f} images/s"
          f" -> stokehold shuffled / h5py = {ours_u8 / h5['shuffled']:.1f}x")
    print(f"h5py uint8, shuffled, one read per sample:       {h5['shuffled_per_sample']:8.0f} images/s"
          f" -> {ours_u8 / h5['shuffled_per_sample']:.1f}x")
    print(f"h5py uint8, contiguous slices in file order:     {h5['sequential']:8.0f} images/s"
          f" -> stokehold in order / h5py = {ours_seq / h5['sequential']:.1f}x")
    print(f"h5py contiguous slices + numpy normalize:        {h5['sequential_normalized']:8.0f} images/s"
          f" -> stokehold float32 / h5py = {float(r['packed_f32_images_per_s']) / h5['sequential_normalized']:.1f}x")
    print(f"peak RSS: {float(r['peak_rss_mb_before']):.0f} MB before the loader, {float(r['peak_rss_mb_after_f32']):.0f} MB"
          f" after the float32 run; prefetch x batch bytes = {float(r['prefetch_times_batch_mb']):.0f} MB")
    single = float(r["jit_single_thread_images_per_s"])
    print(f"just in time: single-thread decode+resize {single:.0f} images/s;"
          f" loader 1 worker {float(r['jit_loader_1_workers_images_per_s']):.0f}"
          f" ({float(r['jit_loader_1_workers_efficiency']):.0%} of 1x),"
          f" {w} workers {float(r[f'jit_loader_{w}_workers_images_per_s']):.0f}"
          f" ({float(r[f'jit_loader_{w}_workers_efficiency']):.0%} of {w}x)")


if __name__ == "__main__":
    main()
