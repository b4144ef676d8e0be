"""Aspect-ratio buckets benchmark: padding and throughput, one run.

    python benchmarks/buckets_bench.py [--n 2000] [--max-size 256] [--buckets 8] [--out bench-out]

A corpus of `--n` JPEGs whose aspect ratios (width / height) spread as
COCO's do between 0.5 and 2.0 (most near 4:3 and 3:4, the rest log-uniform),
longer side 640, is packed twice:

1. `resize="fit", max_size=--max-size` (each sample its own shape), read with
   `buckets=--buckets`: the share of padding in the batches' pixels (from the
   masks, over a whole epoch) against the letterbox baseline's share at the
   square `max_size × max_size` (its content rectangles, computed from the
   same sizes).
2. Throughput: bucketed batches against fixed-size packed batches of the
   same pixel count (stretched to the square whose area is the bucketed
   batches' mean image area), both uint8 and float32, the same batch size
   and threads, measured in alternating rounds of whole epochs (at least
   `--seconds` each); the figure is the ratio of the medians of pixels per
   second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np


def aspects(n: int, seed: int) -> np.ndarray:
    """COCO-like aspect ratios (w/h) in [0.5, 2]: 55% 4:3, 15% 3:4, 5% 1:1,
    the rest log-uniform over [0.5, 2]."""
    rng = np.random.default_rng(seed)
    pick = rng.random(n)
    spread = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    return np.where(pick < 0.55, 4 / 3, np.where(pick < 0.70, 3 / 4, np.where(pick < 0.75, 1.0, spread)))


def make_corpus(root: Path, n: int) -> List[Tuple[int, int]]:
    from PIL import Image

    sizes = []
    rng = np.random.default_rng(1)
    tiles = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(32)]
    stamp = root / f".made-{n}"
    for c in range(10):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(aspects(n, 0)):
        w, h = (640, round(640 / a)) if a >= 1 else (round(640 * a), 640)
        sizes.append((w, h))
        if not stamp.exists():
            Image.fromarray(tiles[i % 32]).resize((w, h), Image.BILINEAR).save(root / f"c{i % 10}" / f"{i:05}.jpg", quality=85)
    stamp.touch()
    return sizes


def fit(w: int, h: int, m: int) -> Tuple[int, int]:
    s = min(m / max(w, h), 1.0)
    return max(round(w * s), 1), max(round(h * s), 1)


def rate(ds, pixels_of, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """Pixels per second over whole epochs of `ds` for at least `seconds`
    (one epoch read first, untimed)."""
    for _ in ds:
        pass
    start = time.perf_counter()
    total = 0
    while time.perf_counter() - start < seconds:
        for batch in ds:
            total += pixels_of(batch)
    return total / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--max-size", type=int, default=256)
    ap.add_argument("--buckets", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="least time of one measurement")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stokehold-buckets-bench")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()

    import stokehold

    work = args.work
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    sizes = make_corpus(images, args.n)
    m = args.max_size
    fitted = stokehold.pack(images, work / "fit.h5", resize="fit", max_size=m, force=True, progress=False)
    assert fitted.num_skipped == 0, fitted.findings

    # 1. Padding: buckets against letterbox at the square.
    ds = stokehold.Dataset(work / "fit.h5", args.batch_size, buckets=args.buckets, outputs="masks", shuffle=False)
    masks = [mk for mk in ds]
    bucket_pad = sum(int((mk == 0).sum()) for mk in masks) / sum(mk.size for mk in masks)
    mean_area = statistics.fmean(mk.shape[1] * mk.shape[2] for mk in masks for _ in range(mk.shape[0]))
    letterbox_pad = 1 - statistics.fmean(
        min(m / w, m / h) ** 2 * w * h / (m * m) for w, h in sizes
    )
    shapes = ds.bucket_shapes
    ds.close()

    # 2. Throughput against fixed-size batches of the same pixel count.
    side = round(math.sqrt(mean_area))
    fixed = stokehold.pack(images, work / "fixed.h5", size=side, force=True, progress=False)
    assert fixed.num_skipped == 0
    results: Dict[str, Dict[str, List[float]]] = {}
    for dtype in ("uint8", "float32"):
        rates: Dict[str, List[float]] = {"buckets": [], "fixed": []}
        for _ in range(args.rounds):
            for name in ("buckets", "fixed"):
                kw = dict(buckets=args.buckets) if name == "buckets" else {}
                path = work / ("fit.h5" if name == "buckets" else "fixed.h5")
                with stokehold.Dataset(path, args.batch_size, dtype=dtype, outputs="images", **kw) as d:
                    rates[name].append(rate(d, lambda x: x.shape[0] * x.shape[1] * x.shape[2], args.seconds))
        results[dtype] = rates

    report = {
        "n": args.n,
        "max_size": m,
        "buckets": shapes,
        "padding_share_buckets": bucket_pad,
        "padding_share_letterbox": letterbox_pad,
        "mean_bucket_image_pixels": mean_area,
        "fixed_side": side,
        "threads": os.cpu_count(),
        "throughput_mpix_s": {
            dt: {k: [round(v / 1e6, 1) for v in vs] for k, vs in r.items()} for dt, r in results.items()
        },
        "throughput_ratio": {
            dt: statistics.median(r["buckets"]) / statistics.median(r["fixed"]) for dt, r in results.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "buckets_bench.json").write_text(json.dumps(report, indent=2))
    print(f"corpus: {args.n} JPEGs, aspect 0.5-2.0 (COCO-like), packed fit max_size={m}; buckets: {shapes}")
    print(f"padding share: buckets {bucket_pad:.1%}, letterbox {m}x{m} {letterbox_pad:.1%}")
    for dt, r in results.items():
        b, f = statistics.median(r["buckets"]), statistics.median(r["fixed"])
        print(
            f"throughput {dt}: buckets {b / 1e6:.0f} Mpx/s, fixed {side}x{side} {f / 1e6:.0f} Mpx/s, ratio {b / f:.2f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
