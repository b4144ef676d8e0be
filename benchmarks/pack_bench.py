"""Pack benchmark: stokehold versus a Pillow + h5py packer, side by side.

    python benchmarks/pack_bench.py [--n 2000] [--workers 2] [--out bench-out]

1. Makes the photo corpus (benchmarks/photos.py) and warms the page cache.
2. Single thread, files already in memory: stokehold's decode + resize
   (crates/image/examples/decode_resize_bench) against Pillow with
   Image.draft, and Pillow without it; each output's mean absolute error
   against a full-resolution Pillow decode + antialiased bilinear resize.
3. Packing to 224x224 raw with the same number of workers, three trials each,
   alternating: `stokehold pack` against a Pillow packer that decodes on a
   process pool and writes with h5py. Median images/s and peak RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from photos import make  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224


def files(corpus: Path) -> List[Path]:
    return sorted(p for p in corpus.rglob("*.jpg"))


def pillow_one(path: str, draft: bool) -> np.ndarray:
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", (SIZE, SIZE))
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))


def pillow_from_bytes(blob: bytes, draft: bool) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        if draft:
            im.draft("RGB", (SIZE, SIZE))
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))


def single_thread(paths: List[Path], out: Path) -> dict:
    blobs = [p.read_bytes() for p in paths]
    result = {}
    outputs = {}
    for draft in (True, False):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            arrs = [pillow_from_bytes(b, draft) for b in blobs]
            runs.append((time.perf_counter() - t) * 1e3 / len(blobs))
        key = "pillow_draft" if draft else "pillow_full"
        result[key + "_ms"] = statistics.median(runs)
        outputs[key] = np.stack(arrs).astype(np.int16)
    dump = out / "stokehold_resized.raw"
    exe = ROOT / "target" / "release" / "examples" / "decode_resize_bench"
    line = subprocess.run([str(exe), str(paths[0].parents[1]), str(SIZE), str(dump)], capture_output=True, text=True, check=True).stdout
    result["stokehold_line"] = line.strip()
    result["stokehold_ms"] = float(line.split(":")[1].split("ms")[0])
    ours = np.fromfile(dump, dtype=np.uint8).reshape(len(blobs), SIZE, SIZE, 3).astype(np.int16)
    dump.unlink()
    ref = outputs["pillow_full"]
    result["mae_stokehold"] = float(np.abs(ours - ref).mean())
    result["mae_pillow_draft"] = float(np.abs(outputs["pillow_draft"] - ref).mean())
    return result


def run_measured(cmd: List[str]) -> Tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command and its children."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return wall, usage.ru_maxrss / 1024


def pillow_pack(corpus: Path, out: Path, workers: int) -> None:
    """The comparison packer: Pillow on a process pool, h5py in order."""
    import h5py

    paths = [str(p) for p in files(corpus)]
    with h5py.File(out, "w") as f, ProcessPoolExecutor(workers) as pool:
        ds = f.create_dataset("images", (len(paths), SIZE, SIZE, 3), dtype=np.uint8)
        s = np.zeros(3)
        s2 = np.zeros(3)
        for i, arr in enumerate(pool.map(pillow_one, paths, [True] * len(paths), chunksize=16)):
            ds[i] = arr
            px = arr.reshape(-1, 3).astype(np.float64)
            s += px.sum(0)
            s2 += (px * px).sum(0)
        n = len(paths) * SIZE * SIZE
        f.attrs["mean"] = s / n
        f.attrs["std"] = np.sqrt(s2 / n - (s / n) ** 2)
    import resource

    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.with_suffix(".workers-rss").write_text(f"{worker_mb:.0f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="bench-out")
    p.add_argument("--pillow-pack", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.pillow_pack:
        pillow_pack(Path(a.pillow_pack[0]), Path(a.pillow_pack[1]), a.workers)
        return
    out = Path(a.out)
    corpus = make(out / "photos", a.n)
    paths = files(corpus)
    sizes = [Image.open(p).size for p in paths]
    total = sum(p.stat().st_size for p in paths)
    print(f"corpus: {len(paths)} JPEGs, mean {np.mean([s[0] for s in sizes]):.0f}x{np.mean([s[1] for s in sizes]):.0f}, "
          f"{total / len(paths) / 1e3:.0f} kB mean; {platform.processor() or platform.machine()}, {os.cpu_count()} cores")

    # The pack comparison runs first, while this process is small: a child's
    # peak RSS as wait4 reports it counts the pages it shared with us before exec.
    stokehold = str(Path(sys.executable).parent / "stokehold")
    ours, theirs = [], []
    for trial in range(3):
        for name in ("stokehold", "pillow"):
            target = out / f"{name}.h5"
            if target.exists():
                target.unlink()
            if name == "stokehold":
                cmd = [stokehold, "pack", str(corpus), "-o", str(target), "--size", f"{SIZE}x{SIZE}",
                       "--workers", str(a.workers), "--quiet"]
                ours.append(run_measured(cmd))
            else:
                cmd = [sys.executable, __file__, "--workers", str(a.workers), "--pillow-pack", str(corpus), str(target)]
                theirs.append(run_measured(cmd))
    ips = lambda runs: statistics.median(len(paths) / w for w, _ in runs)  # noqa: E731
    rss = lambda runs: max(r for _, r in runs)  # noqa: E731
    print(f"pack to {SIZE}x{SIZE} raw, {a.workers} workers, median of 3 (alternating):")
    print(f"  stokehold pack:            {ips(ours):7.0f} images/s, peak RSS {rss(ours):.0f} MB (one process)")
    worker_mb = float((out / "pillow.workers-rss").read_text())
    print(f"  Pillow process pool+h5py:  {ips(theirs):7.0f} images/s, peak RSS {rss(theirs):.0f} MB parent"
          f" + {a.workers} workers of up to {worker_mb:.0f} MB each")
    print(f"  ratio: {ips(ours) / ips(theirs):.2f}x")
    storage = {"raw": (ips(ours), (out / "stokehold.h5").stat().st_size)}
    for kind in ("jpeg", "png"):
        target = out / f"stokehold-{kind}.h5"
        cmd = [stokehold, "pack", str(corpus), "-o", str(target), "--size", f"{SIZE}x{SIZE}",
               "--workers", str(a.workers), "--storage", kind, "--quiet", "--force"]
        wall, _ = run_measured(cmd)
        storage[kind] = (len(paths) / wall, target.stat().st_size)
    print("storage trade-off (one run each):")
    for kind, (rate, size) in storage.items():
        print(f"  {kind:>4}: {size / 1e6:7.1f} MB ({size / len(paths) / 1e3:5.1f} kB/sample), packed at {rate:5.0f} images/s")

    st = single_thread(paths, out)
    print(f"single thread, decode + resize to {SIZE}x{SIZE}, files in memory:")
    print(f"  {st['stokehold_line']}")
    print(f"  Pillow with draft:    {st['pillow_draft_ms']:.3f} ms/image")
    print(f"  Pillow without draft: {st['pillow_full_ms']:.3f} ms/image")
    print(f"  ratio Pillow-draft / stokehold: {st['pillow_draft_ms'] / st['stokehold_ms']:.2f}x")
    print(f"  mean abs error vs full-decode Pillow bilinear: stokehold {st['mae_stokehold']:.2f}, "
          f"Pillow draft {st['mae_pillow_draft']:.2f} (0-255)")

    (out / "pack_bench.json").write_text(json.dumps({"single_thread": st, "stokehold": ours, "pillow": theirs}, indent=1))


if __name__ == "__main__":
    main()
