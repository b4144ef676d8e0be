"""Every way of feeding 224x224 batches, side by side, on two corpora, one run.

    python benchmarks/bench_all.py [--work DIR] [--out bench-out] [--rounds 3]
                                   [--corpus imagenet-like,phone] [--methods a,b,...] [--quick]

Corpora (made by code, deterministic, reused from --work when present):
"imagenet-like", 1,000 JPEGs of 300-640 px cut from scikit-image's
photographs (benchmarks/photos.py), and "phone", 24 JPEGs of 4000x3000
(benchmarks/phones.py). Each run indexes them, packs them (raw and JPEG
q90, 224x224) and computes the first-batch reference (Pillow, full decode,
antialiased bilinear).

Methods (benchmarks/bench_all_methods.py): Pillow on one thread with and
without ``draft``; a Keras PyDataset of Pillow with threads and with
processes (the baseline of the ratios: threads); tf.data with and without
antialiasing; a torch DataLoader of Pillow; h5py on the packed raw file;
stokehold just in time, packed raw (float32 and uint8) and packed JPEG.
All give batches of 64 (float32, NHWC, ImageNet mean/std on the 0-255
scale) in manifest order. References: single-thread memory copy, and
single-thread decode + resize with Pillow (draft) and with stokehold.

Each method runs in its own process: one untimed pass, then full passes for
at least --min-seconds. Rounds go over all methods, each round starting one
method later, so that drift of a shared machine falls on all alike; medians
and every round's figure are reported. Peak RSS is the process tree's (the
sum over worker processes, sampled every 0.1 s, and at least the largest
single process's peak from wait4). CPU ms/image is the user + system time of
the whole tree over the timed passes, per image. A method counts only when
its first batch has the expected shape and dtype, the right labels, each
image nearest to its own reference image, and a mean absolute difference
from the reference (0-255 scale, over the first batch) under --tolerance,
and every pass has every image.

Writes OUT/results.json, OUT/results.md and OUT/results.png (the chart
needs matplotlib; without it the script says so and writes the others).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import bench_all_report  # noqa: E402
from bench_all_methods import BASELINE, MEMCPY, METHODS, tree_rss_bytes  # noqa: E402

SIZE = 224
# ImageNet's statistics on the 0-255 scale, for every method alike.
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
# name: (images in a full run, in a --quick run)
CORPORA = {"imagenet-like": (1000, 100), "phone": (24, 4)}


def make_corpus(name: str, folder: Path, n: int) -> Path:
    if name == "imagenet-like":
        from photos import make
    else:
        from phones import make
    return make(folder, n, seed=0)


def batch_size_for(name: str, a: argparse.Namespace) -> int:
    return int(a.phone_batch_size if name == "phone" and a.phone_batch_size else a.batch_size)


def pillow_reference(paths: List[str]) -> np.ndarray:
    """The first batch as Pillow gives it at full quality: full decode, RGB,
    antialiased bilinear resize (what every method is compared with)."""
    from PIL import Image

    out = np.empty((len(paths), SIZE, SIZE, 3), np.uint8)
    for k, path in enumerate(paths):
        with Image.open(path) as im:
            out[k] = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    return out


def prepare(name: str, n: int, work: Path, a: argparse.Namespace) -> Tuple[Path, Dict[str, Any]]:
    """Corpus, manifest, packed files, reference and the spec the methods read."""
    import stokehold
    from PIL import Image

    folder = make_corpus(name, work / f"{name}-{n}", n)
    manifest = stokehold.index(folder, progress=False)
    if len(manifest) != n or manifest.findings:
        raise SystemExit(f"{name}: indexed {len(manifest)} of {n} images, findings: {manifest.findings[:3]}")
    manifest_path = work / f"{name}-{n}.jsonl"
    manifest.save(manifest_path)
    paths = [s.path for s in manifest]
    labels = [-1 if s.label is None else s.label for s in manifest]
    # Packed anew each run (a second or two): the file is then the installed
    # stokehold's, whatever made the one before. Packing is a one-off cost,
    # reported apart from the feeding figures.
    packed: Dict[str, Dict[str, Any]] = {}
    for storage in ("raw", "jpeg"):
        out = work / f"{name}-{n}-{SIZE}-{storage}.h5"
        t = time.perf_counter()
        report = stokehold.pack(manifest_path, out, size=(SIZE, SIZE), storage=storage, quality=90,
                                num_threads=a.threads, force=True, progress=False)
        packed[storage] = {"path": str(out), "seconds": time.perf_counter() - t, "bytes": out.stat().st_size,
                           "num_samples": report.num_samples, "num_skipped": report.num_skipped}
        if storage == "raw":
            # Pack per core: the same on one thread, to a scratch file.
            one = work / f"{name}-{n}-{SIZE}-raw-1t.h5"
            t1 = time.perf_counter()
            stokehold.pack(manifest_path, one, size=(SIZE, SIZE), num_threads=1, force=True, progress=False)
            packed[storage]["seconds_1_thread"] = time.perf_counter() - t1
            one.unlink()
        if report.num_skipped:
            # Not fatal: the methods that read this file then fail the check (images per pass, labels).
            print(f"WARNING: {name}: stokehold.pack ({storage}) skipped {report.num_skipped} of {n} images"
                  f" (the packed methods will not count)", flush=True)
    batch_size = batch_size_for(name, a)
    first = min(batch_size, n)
    ref_path = work / f"{name}-{n}-ref-{first}.npy"
    if not ref_path.exists():
        np.save(ref_path, pillow_reference(paths[:first]))
    # Warm the page cache: every method reads from memory, none from the disk.
    for p in paths + [packed["raw"]["path"], packed["jpeg"]["path"]]:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    sizes = []
    for p in paths:
        with Image.open(p) as im:
            sizes.append(im.size)
    file_bytes = [os.path.getsize(p) for p in paths]
    info = {
        "images": n,
        "batch_size": batch_size,
        "folder": str(folder),
        "mean_width": float(np.mean([w for w, _ in sizes])),
        "mean_height": float(np.mean([h for _, h in sizes])),
        "mean_file_kb": float(np.mean(file_bytes)) / 1e3,
        "total_mb": sum(file_bytes) / 1e6,
        "packed": packed,
    }
    spec = {
        "corpus": name,
        "paths": paths,
        "labels": labels,
        "manifest": str(manifest_path),
        "packed_raw": packed["raw"]["path"],
        "packed_jpeg": packed["jpeg"]["path"],
        "ref": str(ref_path),
        "batch_size": batch_size,
        "threads": a.threads,
        "size": SIZE,
        "mean": MEAN,
        "std": STD,
        "min_seconds": a.min_seconds,
    }
    spec_path = work / f"spec-{name}-{n}.json"
    spec_path.write_text(json.dumps(spec))
    return spec_path, info


def run_child(method: str, spec_path: Path, log: Path, env: Dict[str, str], timeout: float) -> Dict[str, Any]:
    """One method in its own process; adds its process tree's peak RSS."""
    cmd = [sys.executable, str(HERE / "bench_all_methods.py"), method, str(spec_path)]
    with open(log, "w") as out:
        # Its own session: on a timeout the whole group (workers too) is killed.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    peak, start, timed_out = 0, time.monotonic(), False
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        # The sum over the tree: Keras's and torch's worker processes count too.
        peak = max(peak, tree_rss_bytes(proc.pid))
        if time.monotonic() - start > timeout and not timed_out:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith('{"status"')]
    if timed_out:
        result: Dict[str, Any] = {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    elif not lines:
        result = {"status": "failed", "reason": f"exit status {proc.returncode}, no result (see {log})"}
    else:
        result = json.loads(lines[-1])
    # The sampled sum can miss a short peak, so the main process's own exact
    # peak (VmHWM) is a floor. Not wait4's ru_maxrss: subprocess starts the
    # child with vfork, and the kernel then charges this (parent) process's
    # peak to the child at its exec.
    result["peak_rss_mb"] = max(peak / 1e6, result.get("own_peak_rss_mb", 0.0))
    result["process_wall_s"] = wall
    return result


def verdict(method: str, r: Dict[str, Any], n: int, batch_size: int, tolerance: float) -> Optional[str]:
    """Why a run's batches are not the same as the others' (None: they are)."""
    c = r["check"]
    problems = []
    expected = [min(batch_size, n), SIZE, SIZE, 3]
    if c.get("shape") != expected:
        problems.append(f"shape {c.get('shape')}, not {expected}")
    if c.get("dtype") != METHODS[method].dtype:
        problems.append(f"dtype {c.get('dtype')}, not {METHODS[method].dtype}")
    if not c.get("labels_match"):
        problems.append("labels differ")
    if r["images_per_pass"] != [n] or r["warmup_images"] != n:
        problems.append(f"{r['warmup_images']} / {r['images_per_pass']} images per pass, not {n}")
    if not c.get("in_order"):
        problems.append("images out of order or wrong")
    mad = c.get("mad_first_batch")
    if mad is None or not mad < tolerance:
        problems.append(f"MAD {mad:.2f} (tolerance {tolerance})" if mad is not None else "no content")
    return "; ".join(problems) or None


def summarize(runs: Dict[str, List[Dict[str, Any]]], n: int, batch_size: int, a: argparse.Namespace) -> Dict[str, Any]:
    """Medians, per-round figures, ratios to the baseline (round by round) and the check."""
    out: Dict[str, Any] = {}
    base = runs.get(BASELINE, [])
    for method, rs in runs.items():
        s: Dict[str, Any] = {"label": METHODS[method].label, "reference": METHODS[method].reference, "runs": rs}
        bad = [r for r in rs if r["status"] != "ok"]
        if bad:
            s["status"] = bad[0]["status"]
            s["reason"] = bad[0].get("reason", "")
            s["counted"] = False
            out[method] = s
            continue
        s["status"] = "ok"
        s["images_per_s"] = statistics.median(r["images_per_s"] for r in rs)
        s["images_per_s_rounds"] = [r["images_per_s"] for r in rs]
        s["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in rs)
        s["peak_rss_mb_rounds"] = [r["peak_rss_mb"] for r in rs]
        s["cpu_ms_per_image"] = statistics.median(r["cpu_ms_per_image"] for r in rs)
        s["cpu_ms_per_image_rounds"] = [r["cpu_ms_per_image"] for r in rs]
        problems = [p for p in (verdict(method, r, n, batch_size, a.tolerance) for r in rs) if p]
        s["counted"] = not problems
        s["reason"] = problems[0] if problems else ""
        s["mad_first_batch"] = max(r["check"]["mad_first_batch"] for r in rs)
        s["mad_max_image"] = max(r["check"]["mad_max_image"] for r in rs)
        s["first_batch_mean"] = rs[0]["check"]["first_batch_mean"]
        if len(base) == len(rs) and all(b["status"] == "ok" for b in base):
            per_round = [r["images_per_s"] / b["images_per_s"] for r, b in zip(rs, base)]
            s["ratio_to_baseline_rounds"] = per_round
            s["ratio_to_baseline"] = statistics.median(per_round)
        out[method] = s
    return out


# The figures the project targets, per corpus: (name, numerator method,
# denominator method, target), each a ratio of images/s measured in the
# same round; "worst" is the least round's. "pack" is packing raw on one
# thread.
TARGETS = {
    "imagenet-like": [
        ("just in time / Keras PyDataset, Pillow draft, threads", "stokehold-jit", "keras-threads", 3.3),
        ("just in time / Keras PyDataset, Pillow full decode, threads", "stokehold-jit", "keras-threads-full", 3.3),
        ("just in time / tf.data, antialiased", "stokehold-jit", "tf-data-antialias", 2.0),
        ("just in time / tf.data, no antialias", "stokehold-jit", "tf-data", 2.0),
        ("just in time / torch DataLoader", "stokehold-jit", "torch-dataloader", 2.0),
        ("just in time, 2 threads / 1 thread", "stokehold-jit", "stokehold-jit-1t", 1.9),
        ("decode + resize, 1 thread / Pillow draft", "ref-stokehold-1t", "ref-pillow-1t", 2.5),
    ],
    "phone": [
        ("just in time, 1 thread / Pillow draft, 1 thread (per core)", "stokehold-jit-1t", "pillow-draft", 1.0),
        ("pack, 1 thread / Pillow draft, 1 thread (per core)", "pack", "pillow-draft", 1.0),
        ("just in time, 2 threads / Pillow draft, 1 thread", "stokehold-jit", "pillow-draft", 1.9),
        ("just in time, 2 threads / 1 thread", "stokehold-jit", "stokehold-jit-1t", 1.9),
    ],
}


def targets(name: str, results: Dict[str, Any], corpus: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each target's ratio: the median of the per-round ratios and the worst round's."""
    out = []
    for label, num, den, target in TARGETS.get(name, []):
        d = results.get(den)
        if not d or d.get("status") != "ok":
            continue
        if num == "pack":
            seconds = corpus["packed"]["raw"].get("seconds_1_thread")
            if not seconds:
                continue
            rate = corpus["images"] / seconds
            per_round = [rate / v for v in d["images_per_s_rounds"]]
        else:
            u = results.get(num)
            if not u or u.get("status") != "ok":
                continue
            per_round = [x / y for x, y in zip(u["images_per_s_rounds"], d["images_per_s_rounds"])]
        out.append({"target": label, "numerator": num, "denominator": den, "wanted": target,
                    "median": statistics.median(per_round), "worst": min(per_round), "rounds": per_round})
    return out


def machine() -> Dict[str, Any]:
    def version(dist: str) -> Optional[str]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next((int(line.split()[1]) / 1e6 for line in open("/proc/meminfo") if line.startswith("MemTotal")), None)
    dists = ("stokehold", "numpy", "pillow", "h5py", "keras", "jax", "torch", "tensorflow", "tensorflow-cpu",
             "matplotlib")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {d: version(d) for d in dists if version(d)},
        "load_average_start": os.getloadavg(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=None, help="corpora and packed files (default: OUT/bench_all-work)")
    p.add_argument("--out", type=Path, default=ROOT / "bench-out")
    p.add_argument("--rounds", type=int, default=None, help="rounds over all methods (default 3; 1 with --quick)")
    p.add_argument("--corpus", default=",".join(CORPORA), help=f"comma-separated: {', '.join(CORPORA)}")
    every = [*METHODS, MEMCPY]
    p.add_argument("--methods", default=",".join(every), help=f"comma-separated: {', '.join(every)}")
    p.add_argument("--quick", action="store_true", help="smoke test: 100 + 4 images, 1 round, 0.5 s timed")
    p.add_argument("--min-seconds", type=float, default=None, help="timed seconds per run at least (default 2; 0.5 with --quick)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="workers/threads (default: the usable cores)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--phone-batch-size", type=int, default=8,
                   help="batch size for the phone corpus (default 8: with 24 images, batches of 64 would make a pass"
                        " one batch, which a loader that parallelizes across batches decodes on one core)")
    p.add_argument("--tolerance", type=float, default=3.0, help="largest mean absolute difference of the first batch from the reference (0-255)")
    p.add_argument("--keras-backend", default=os.environ.get("KERAS_BACKEND", "jax"),
                   help="KERAS_BACKEND of every method (stokehold's Dataset is a Keras PyDataset too); default jax")
    p.add_argument("--timeout", type=float, default=900, help="seconds before a method's process is killed")
    a = p.parse_args()
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.min_seconds = a.min_seconds if a.min_seconds is not None else (0.5 if a.quick else 2.0)
    corpora = [c for c in a.corpus.split(",") if c]
    methods = [m for m in a.methods.split(",") if m]
    for name in corpora:
        if name not in CORPORA:
            p.error(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    for m in methods:
        if m not in every:
            p.error(f"unknown method {m!r}; known: {', '.join(every)}")
    out = a.out
    work = (a.work or out / "bench_all-work").resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": a.quick,
            "machine": machine(), "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}}
    print(f"{info['machine']['cpu']}, {info['machine']['cores_usable']} usable cores; {a.threads} threads,"
          f" batches of {a.batch_size}{f' (phone: {a.phone_batch_size})' if a.phone_batch_size else ''}, {a.rounds} round(s), >= {a.min_seconds} s timed per run"
          f"{' (QUICK smoke test: figures are not results)' if a.quick else ''}", flush=True)

    specs, corpus_info = {}, {}
    for name in corpora:
        n = CORPORA[name][1 if a.quick else 0]
        t = time.monotonic()
        specs[name], corpus_info[name] = prepare(name, n, work, a)
        c = corpus_info[name]
        print(f"corpus {name}: {n} JPEGs, mean {c['mean_width']:.0f}x{c['mean_height']:.0f}, {c['mean_file_kb']:.0f} kB;"
              f" packed raw in {c['packed']['raw']['seconds']:.1f} s, JPEG in {c['packed']['jpeg']['seconds']:.1f} s"
              f" (ready in {time.monotonic() - t:.0f} s)", flush=True)

    env = {**os.environ, "KERAS_BACKEND": a.keras_backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    order = [m for m in METHODS if m in methods]
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {name: {m: [] for m in order} for name in corpora}
    memcpy_runs: List[Dict[str, Any]] = []
    given_up: Dict[str, Dict[str, Any]] = {}  # method -> its skip (a missing dependency is missing everywhere)
    for round_ in range(a.rounds):
        # Each round starts one method later: none always runs first or last.
        k = round_ % len(order) if order else 0
        for name in corpora:
            n = CORPORA[name][1 if a.quick else 0]
            for method in order[k:] + order[:k]:
                if method in given_up:
                    runs[name][method].append(given_up[method])
                    continue
                log = logs / f"{name}-{method}-round{round_ + 1}.log"
                r = run_child(method, specs[name], log, env, a.timeout)
                runs[name][method].append(r)
                if r["status"] == "skipped":
                    given_up[method] = r
                problem = verdict(method, r, n, batch_size_for(name, a), a.tolerance) if r["status"] == "ok" else None
                print(f"  round {round_ + 1} {name:>13} {method:>22}: " + bench_all_report.one_line(r, problem),
                      flush=True)
        if MEMCPY in methods:
            r = run_child(MEMCPY, specs[corpora[0]], logs / f"memcpy-round{round_ + 1}.log", env, a.timeout)
            memcpy_runs.append(r)
            print(f"  round {round_ + 1} memory copy, 1 thread: " +
                  (f"{r['gb_per_s']:.2f} GB/s" if r["status"] == "ok" else f"{r['status']}: {r.get('reason')}"), flush=True)

    info["corpora"] = corpus_info
    info["results"] = {name: summarize(runs[name], CORPORA[name][1 if a.quick else 0], batch_size_for(name, a), a)
                       for name in corpora}
    info["targets"] = {name: targets(name, info["results"][name], corpus_info[name]) for name in corpora}
    ok = [r for r in memcpy_runs if r["status"] == "ok"]
    info["memcpy"] = {"runs": memcpy_runs, "gb_per_s": statistics.median(r["gb_per_s"] for r in ok) if ok else None,
                      "float32_images_per_s": statistics.median(r["float32_images_per_s"] for r in ok) if ok else None}
    info["machine"]["load_average_end"] = os.getloadavg()
    info["wall_s"] = time.monotonic() - started

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(info, indent=1) + "\n")
    md = bench_all_report.markdown(info)
    (out / "results.md").write_text(md)
    print()
    print(md)
    print(bench_all_report.chart(info, out / "results.png"))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}; {info['wall_s'] / 60:.1f} min in all")


if __name__ == "__main__":
    main()
