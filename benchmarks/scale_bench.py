"""Scale benchmark: packing time and memory against the number of samples,
opening a dataset of a thousand shards, packed JPEG storage read by the
loader, and packing on a local Ray against one machine. One run; figures
are ratios or growth, measured side by side.

    python benchmarks/scale_bench.py [--large 200000] [--small 50000] [--out bench-out]

1. Pack time linear in N: `--large` generated images (48×48 JPEGs) packed
   from a manifest into shards of 12,500 (16 shards) against the first
   `--small` of them, alternating, two rounds each: time per image and the
   packing process's peak RSS.
2. Opening a dataset of 1,000 shards (the large set at 200 samples a
   shard): time to open it with `stokehold.Dataset`, and the memory it keeps
   per sample (RSS after opening, less before, in a fresh process).
3. Packed JPEG storage (the photo corpus, 224×224, quality 90): the loader
   on 1 and 2 threads against decoding the same bytes from memory
   (crates/loader/examples/encoded_bench).
4. Ray: `stokehold.ray.pack` on a local 2-CPU Ray against `stokehold.pack`
   of the same manifest into shards, same options.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def make_images(root: Path, n: int) -> Path:
    """`n` small JPEGs (48×48, textured) in 100 class folders; reused if present."""
    from PIL import Image

    stamp = root / f".made-{n}"
    if stamp.exists():
        return root
    rng = np.random.default_rng(0)
    tiles = [Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).resize((48, 48), Image.BILINEAR) for _ in range(64)]
    for c in range(100):
        (root / f"c{c:02}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        tiles[i % 64].save(root / f"c{i % 100:02}" / f"{i:07}.jpg", quality=85)
    stamp.touch()
    return root


def run_measured(cmd: List[str]) -> Tuple[float, float, str]:
    """Runs `cmd`; returns (seconds, the process tree's peak RSS in MB, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    # ru_maxrss of all waited-for children so far: measure each kind in its
    # own interpreter below, so this is this command's peak.
    return seconds, 0.0, out


PACK_CHILD = """
import resource, subprocess, sys, time, json
cmd = sys.argv[1:]
t = time.monotonic()
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
s = time.monotonic() - t
print(json.dumps({"seconds": s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def pack_measured(cmd: List[str]) -> Dict[str, float]:
    """Seconds and peak RSS of one `stokehold pack` process (its own parent, so that
    RUSAGE_CHILDREN is this process alone)."""
    out = subprocess.run([sys.executable, "-c", PACK_CHILD, *cmd], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


OPEN_CHILD = """
import gc, json, os, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
os.environ["KERAS_BACKEND"] = "numpy"
import stokehold, numpy
ds0 = stokehold.Dataset(sys.argv[2], batch_size=64, shuffle=False)  # warm imports and allocator
ds0.close(); gc.collect()
before = rss()
t = time.monotonic()
ds = stokehold.Dataset(sys.argv[1], batch_size=64)
opened = time.monotonic() - t
gc.collect()
after = rss()
n = stokehold.inspect(sys.argv[1])["num_samples"]
print(json.dumps({"open_seconds": opened, "bytes_per_sample": (after - before) / n, "samples": n, "shards": stokehold.inspect(sys.argv[1])["num_shards"]}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--large", type=int, default=200_000)
    p.add_argument("--small", type=int, default=50_000)
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--out", type=Path, default=ROOT / "bench-out")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: linear,open,jpeg,ray")
    a = p.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    import stokehold

    work = a.work or Path(tempfile.mkdtemp(prefix="stokehold-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).parent / "stokehold")
    results: Dict[str, object] = {"large": a.large, "small": a.small}

    images = make_images(work / "images", a.large)
    manifest = work / "manifest.jsonl"
    if not manifest.exists():
        stokehold.index(images, progress=False).save(manifest)
    m = stokehold.Manifest.load(manifest)
    small_manifest = work / "manifest-small.jsonl"
    if not small_manifest.exists():
        # The first `small` samples, the same images.
        lines = manifest.read_text().splitlines()
        header = json.loads(lines[0])
        header["num_samples"] = a.small
        small_manifest.write_text("\n".join([json.dumps(header)] + lines[1 : a.small + 1]) + "\n")
    assert len(m) == a.large

    if "linear" not in skip:
        rows = {"small": [], "large": []}
        for _ in range(2):
            for name, src, n in (("small", small_manifest, a.small), ("large", manifest, a.large)):
                out = work / f"packed-{name}"
                r = pack_measured([exe, "pack", str(src), "-o", str(out), "--size", "32", "--samples-per-shard", "12500", "--threads", "2", "--force", "--quiet"])
                r["us_per_image"] = 1e6 * r["seconds"] / n
                rows[name].append(r)
        summary = {k: {"us_per_image": statistics.median(x["us_per_image"] for x in v), "peak_rss_mb": statistics.median(x["peak_rss_mb"] for x in v)} for k, v in rows.items()}
        summary["time_per_image_ratio"] = summary["large"]["us_per_image"] / summary["small"]["us_per_image"]
        summary["peak_rss_ratio"] = summary["large"]["peak_rss_mb"] / summary["small"]["peak_rss_mb"]
        summary["shards_large"] = stokehold.inspect(work / "packed-large")["num_shards"]
        results["linear"] = summary
        print("pack linear in N:", json.dumps(summary))

    if "open" not in skip:
        shards = work / "packed-1000"
        if not (shards / "dataset.json").exists():
            stokehold.pack(manifest, shards, size=16, samples_per_shard=a.large // 1000, force=True, progress=False)
        small_file = work / "small.h5"
        if not small_file.exists():
            stokehold.pack(small_manifest, small_file, size=16, force=True, progress=False)
        runs = [json.loads(subprocess.run([sys.executable, "-c", OPEN_CHILD, str(shards), str(small_file)], capture_output=True, text=True, check=True).stdout.splitlines()[-1]) for _ in range(3)]
        summary = {
            "shards": runs[0]["shards"],
            "samples": runs[0]["samples"],
            "open_seconds": statistics.median(r["open_seconds"] for r in runs),
            "bytes_per_sample": statistics.median(r["bytes_per_sample"] for r in runs),
            "index_bytes": (shards / "dataset.json").stat().st_size,
        }
        results["open"] = summary
        print("open a 1000-shard dataset:", json.dumps(summary))

    if "jpeg" not in skip:
        from photos import make as photo_corpus

        corpus = photo_corpus(work / "photos")
        packed = work / "photos-jpeg.h5"
        if not packed.exists():
            stokehold.pack(corpus, packed, size=224, storage="jpeg", quality=90, progress=False)
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "stokehold-loader", "--example", "encoded_bench"], cwd=ROOT, check=True, capture_output=True)
        out = subprocess.run([str(ROOT / "target" / "release" / "examples" / "encoded_bench"), str(packed), "3"], capture_output=True, text=True, check=True).stdout
        figures = {k: float(v) for k, v in (line.split() for line in out.splitlines())}
        results["jpeg"] = figures
        print("packed JPEG storage:", json.dumps(figures))

    if "ray" not in skip:
        from photos import make as photo_corpus

        corpus = photo_corpus(work / "photos")
        pm = work / "photos.jsonl"
        stokehold.index(corpus, progress=False).save(pm)
        rows = []
        for _ in range(2):
            t = time.monotonic()
            stokehold.pack(pm, work / "photos-local", size=224, samples_per_shard=500, num_threads=2, force=True, progress=False)
            local = time.monotonic() - t
            code = (
                "import time, stokehold.ray as sr\n"
                "sr.init_local(2)\n"
                "t = time.monotonic()\n"
                f"r = sr.pack({str(pm)!r}, {str(work / 'photos-ray')!r}, size=224, samples_per_shard=500, parts=2, force=True, progress=False)\n"
                "print(time.monotonic() - t)\n"
            )
            ray_s = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
            rows.append({"local_seconds": local, "ray_seconds": ray_s})
        summary = {
            "samples": len(stokehold.Manifest.load(pm)),
            "local_seconds": statistics.median(r["local_seconds"] for r in rows),
            "ray_seconds": statistics.median(r["ray_seconds"] for r in rows),
        }
        summary["ray_overhead"] = summary["ray_seconds"] / summary["local_seconds"] - 1
        results["ray"] = summary
        print("Ray pack vs one machine:", json.dumps(summary))

    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "scale_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
