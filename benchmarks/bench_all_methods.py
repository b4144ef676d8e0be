"""The methods that benchmarks/bench_all.py compares, one per process.

    python benchmarks/bench_all_methods.py METHOD SPEC.json

Run by bench_all.py, each method in a fresh interpreter so that its memory,
its imports and its worker processes are its own. SPEC.json describes one
corpus (written by bench_all.py): the image paths and labels in manifest
order, the manifest, the packed files, the first-batch reference, batch
size, thread count, mean/std and the minimum timed seconds.

Every method yields ``(images, labels)`` numpy batches of the whole corpus
in manifest order: ``(B, 224, 224, 3)`` float32 normalized with the same
mean/std (uint8 for the uint8 variants). The child runs one untimed pass
(warm-up; its first batch is compared with the Pillow full-decode
reference), then full passes until ``min_seconds`` have gone by, and prints
one JSON line: images/s, CPU seconds of its whole process tree over the
timed passes, and the content statistics. A method whose dependency is not
installed prints ``{"status": "skipped", ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np

Batch = Tuple[np.ndarray, np.ndarray]
Epoch = Callable[[], Iterator[Batch]]
Spec = Dict[str, Any]


# -- the process tree, from /proc (also used by bench_all.py for peak RSS) ----
def proc_table() -> Dict[int, Tuple[int, int, float]]:
    """pid -> (parent pid, resident bytes, CPU seconds incl. reaped children) of every process."""
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # After the command name (which may hold spaces): state, ppid, ...
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        try:
            # utime, stime, cutime, cstime are fields 14-17 of stat(5); rss is 24.
            cpu = sum(int(v) for v in fields[11:15]) / tick
            table[int(entry)] = (int(fields[1]), int(fields[21]) * page, cpu)
        except (IndexError, ValueError):
            continue
    return table


def descendants(root: int, table: Dict[int, Tuple[int, int, float]]) -> List[int]:
    """The processes below `root` (not `root` itself)."""
    children: Dict[int, List[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_rss_bytes(root: int) -> int:
    """Resident bytes of `root` and every process below it (shared pages count once per process)."""
    table = proc_table()
    return sum(table[p][1] for p in [root, *descendants(root, table)] if p in table)


def own_peak_rss_bytes() -> int:
    """This process's peak resident memory since its exec (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_pss_bytes() -> int:
    """Proportional set size of this process and its descendants: shared pages
    divided among the processes that share them (forked workers share most of
    their parent's). Read once, after the timed passes: smaps_rollup of a
    process that has imported torch takes about 10 ms to read."""
    total = 0
    for pid in [os.getpid(), *descendants(os.getpid(), proc_table())]:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process, its reaped children, and its
    live descendants (worker pools) with their own reaped children."""
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    table = proc_table()
    return own + sum(table[p][2] for p in descendants(os.getpid(), table))


# -- the methods ----------------------------------------------------------------
def pillow_image(path: str, size: int, draft: bool) -> np.ndarray:
    """Decode, RGB, antialiased bilinear resize: uint8 (size, size, 3)."""
    from PIL import Image

    with Image.open(path) as im:
        if draft:
            # Lets libjpeg decode at 1/2, 1/4 or 1/8 scale, still >= size.
            im.draft("RGB", (size, size))
        return np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def pillow_batch(spec: Spec, lo: int, hi: int, draft: bool, normalize: bool = True) -> Batch:
    """Samples lo..hi decoded with Pillow; float32 normalized with numpy (or uint8)."""
    size = spec["size"]
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    x = np.empty((hi - lo, size, size, 3), np.float32 if normalize else np.uint8)
    for k in range(hi - lo):
        pixels = pillow_image(spec["paths"][lo + k], size, draft)
        x[k] = (pixels - mean) / std if normalize else pixels
    return x, np.asarray(spec["labels"][lo:hi], np.int64)


def batch_ranges(spec: Spec) -> List[Tuple[int, int]]:
    n, b = len(spec["paths"]), spec["batch_size"]
    return [(lo, min(lo + b, n)) for lo in range(0, n, b)]


def build_pillow(spec: Spec, draft: bool, normalize: bool = True) -> Epoch:
    def epoch() -> Iterator[Batch]:
        for lo, hi in batch_ranges(spec):
            yield pillow_batch(spec, lo, hi, draft, normalize)

    return epoch


def build_keras(spec: Spec, processes: bool, draft: bool = True) -> Epoch:
    import keras
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    ranges = batch_ranges(spec)

    class PillowPyDataset(keras.utils.PyDataset):  # type: ignore[misc]
        """The usual Keras input pipeline: Pillow (draft) + numpy in __getitem__."""

        def __len__(self) -> int:
            return len(ranges)

        def __getitem__(self, i: int) -> Batch:
            return pillow_batch(spec, *ranges[i], draft=draft)

    ds = PillowPyDataset(workers=spec["threads"], use_multiprocessing=processes)

    def epoch() -> Iterator[Batch]:
        # As Keras's fit iterates a PyDataset: the adapter's ordered enqueuer
        # (a thread or process pool started for each epoch). One adapter per
        # pass: an abandoned Keras epoch leaves its last batches queued for
        # the next one.
        adapter = PyDatasetAdapter(ds, shuffle=False)
        adapter.on_epoch_begin()
        try:
            for x, y in adapter.get_numpy_iterator():
                yield x, y
        finally:
            adapter.on_epoch_end()

    return epoch


def build_tf(spec: Spec, antialias: bool) -> Epoch:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    size = spec["size"]
    mean = tf.constant(spec["mean"], tf.float32)
    std = tf.constant(spec["std"], tf.float32)

    def load(path: Any, label: Any) -> Any:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=antialias)
        return (image - mean) / std, label

    ds = (
        tf.data.Dataset.from_tensor_slices((spec["paths"], np.asarray(spec["labels"], np.int64)))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(spec["batch_size"])
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    # The same number of threads as every other method (tf.data's default is the core count).
    options.threading.private_threadpool_size = spec["threads"]
    ds = ds.with_options(options)

    def epoch() -> Iterator[Batch]:
        yield from ds.as_numpy_iterator()

    return epoch


def build_torch(spec: Spec) -> Epoch:
    import torch
    from torch.utils.data import DataLoader, Dataset

    class PillowSet(Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return len(spec["paths"])

        def __getitem__(self, i: int) -> Tuple[np.ndarray, int]:
            x, y = pillow_batch(spec, i, i + 1, draft=True)
            return x[0], int(y[0])

    # Persistent workers: started once (in the warm-up pass), as a training
    # loop that iterates many epochs would configure it.
    loader = DataLoader(PillowSet(), batch_size=spec["batch_size"], shuffle=False, num_workers=spec["threads"],
                        persistent_workers=True)
    torch.set_num_threads(1)  # the main process only receives the batches

    def epoch() -> Iterator[Batch]:
        for x, y in loader:
            yield x.numpy(), y.numpy()

    return epoch


def build_h5py(spec: Spec) -> Epoch:
    import h5py

    f = h5py.File(spec["packed_raw"], "r")
    images, labels = f["images"], f["labels"][:]
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)

    def epoch() -> Iterator[Batch]:
        for lo, hi in batch_ranges(spec):
            yield (images[lo:hi].astype(np.float32) - mean) / std, labels[lo:hi]

    return epoch


def build_stokehold(spec: Spec, source: str, **options: Any) -> Epoch:
    import stokehold

    args: Dict[str, Any] = dict(batch_size=spec["batch_size"], shuffle=False, progress=False,
                                mean=spec["mean"], std=spec["std"])
    args["num_threads"] = spec["threads"]
    if source == "manifest":
        args["size"] = (spec["size"], spec["size"])
    args.update(options)
    ds = stokehold.Dataset(spec[source], **args)

    def epoch() -> Iterator[Batch]:
        try:
            yield from ds
        finally:
            ds.on_epoch_end()

    return epoch


def memcpy(spec: Spec) -> Dict[str, Any]:
    """Single-thread copy bandwidth: numpy copying 256 MiB (far beyond the caches)."""
    src = np.ones(256 << 20, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    copies, t = 0, time.perf_counter()
    while time.perf_counter() - t < spec["min_seconds"] or copies < 3:
        np.copyto(dst, src)
        copies += 1
    seconds = time.perf_counter() - t
    gbps = copies * src.nbytes / seconds / 1e9
    per_image = spec["size"] * spec["size"] * 3 * 4
    return {"status": "ok", "gb_per_s": gbps, "copies": copies, "seconds": seconds,
            "float32_images_per_s": gbps * 1e9 / per_image}


@dataclass(frozen=True)
class Method:
    label: str
    dtype: str
    build: Callable[[Spec], Epoch]
    reference: bool = False


METHODS: Dict[str, Method] = {
    "pillow": Method("Pillow, 1 thread, full decode", "float32", lambda s: build_pillow(s, draft=False)),
    "pillow-draft": Method("Pillow, 1 thread, draft", "float32", lambda s: build_pillow(s, draft=True)),
    "keras-threads": Method("Keras PyDataset (Pillow draft), threads", "float32", lambda s: build_keras(s, False)),
    "keras-processes": Method("Keras PyDataset (Pillow draft), processes", "float32", lambda s: build_keras(s, True)),
    "keras-threads-full": Method("Keras PyDataset (Pillow, full decode), threads", "float32",
                                 lambda s: build_keras(s, False, draft=False)),
    "tf-data": Method("tf.data, resize antialias=False", "float32", lambda s: build_tf(s, False)),
    "tf-data-antialias": Method("tf.data, resize antialias=True", "float32", lambda s: build_tf(s, True)),
    "torch-dataloader": Method("torch DataLoader (Pillow draft)", "float32", build_torch),
    "h5py-raw": Method("h5py, packed raw + numpy normalize", "float32", build_h5py),
    "stokehold-jit": Method("stokehold just in time (JPEGs)", "float32", lambda s: build_stokehold(s, "manifest")),
    "stokehold-jit-1t": Method("stokehold just in time (JPEGs), 1 thread", "float32",
                               lambda s: build_stokehold(s, "manifest", num_threads=1)),
    "stokehold-packed": Method("stokehold packed raw, float32", "float32", lambda s: build_stokehold(s, "packed_raw")),
    "stokehold-packed-uint8": Method("stokehold packed raw, uint8", "uint8",
                                     lambda s: build_stokehold(s, "packed_raw", dtype="uint8")),
    "stokehold-packed-jpeg": Method("stokehold packed JPEG q90, float32", "float32",
                                    lambda s: build_stokehold(s, "packed_jpeg")),
    # References: decode + resize only (uint8, no normalization), one thread.
    "ref-pillow-1t": Method("ref: Pillow draft decode+resize, 1 thread", "uint8",
                            lambda s: build_pillow(s, draft=True, normalize=False), reference=True),
    "ref-stokehold-1t": Method("ref: stokehold decode+resize, 1 thread", "uint8",
                               lambda s: build_stokehold(s, "manifest", dtype="uint8", normalize=False,
                                                         num_threads=1, prefetch=1), reference=True),
}
MEMCPY = "memcpy"
BASELINE = "keras-threads"


def thumbnail(image: np.ndarray) -> np.ndarray:
    """8x8 block means of a (224, 224, 3) image: (28, 28, 3), for telling images apart."""
    return np.asarray(image.reshape(28, 8, 28, 8, 3).mean(axis=(1, 3)))


def content(x: np.ndarray, y: np.ndarray, spec: Spec) -> Dict[str, Any]:
    """Shape, dtype and content of a first batch against the Pillow full-decode
    reference, on the 0-255 scale (float32 batches are de-normalized).

    ``mad_*``: mean absolute differences from the reference image of the same
    position. ``in_order``: every image is nearer (8x8 block means) to its own
    reference than to any other image of the batch. Pillow's draft mode alone
    moves single images by up to 3.7 (a 1/2-scale DCT decode), so the batch's
    mean, not its worst image, is what a tolerance can be set on; the order
    check catches a swapped or wrong image that a mean would dilute.
    """
    ref = np.load(spec["ref"], mmap_mode="r")
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    n = min(len(x), len(ref))
    refs = np.stack([thumbnail(np.asarray(ref[k], np.float32)) for k in range(n)]) if n else None
    mads, means, in_order = [], [], True
    for k in range(n):
        image = np.asarray(x[k], np.float32)
        if x.dtype != np.uint8:
            image = image * std + mean
        mads.append(float(np.abs(image - ref[k]).mean()))
        means.append(float(image.mean()))
        nearest = int(np.abs(refs - thumbnail(image)).mean(axis=(1, 2, 3)).argmin())
        in_order = in_order and nearest == k
    return {
        "shape": list(x.shape),
        "dtype": str(x.dtype),
        "labels_match": [int(v) for v in y] == spec["labels"][: len(y)],
        "in_order": in_order,
        "first_batch_mean": float(np.mean(means)) if means else None,
        "mad_first_image": mads[0] if mads else None,
        "mad_first_batch": float(np.mean(mads)) if mads else None,
        "mad_max_image": max(mads) if mads else None,
    }


def run(name: str, spec: Spec) -> Dict[str, Any]:
    if name == MEMCPY:
        return memcpy(spec)
    method = METHODS[name]
    t = time.perf_counter()
    try:
        epoch = method.build(spec)
    except ImportError as e:
        return {"status": "skipped", "reason": f"{type(e).__name__}: {e}"}
    setup_s = time.perf_counter() - t

    # Warm-up: one untimed pass; its first batch is checked.
    t = time.perf_counter()
    check: Dict[str, Any] = {}
    warm_images = 0
    for i, (x, y) in enumerate(epoch()):
        if i == 0:
            check = content(x, y, spec)
        warm_images += len(x)
        del x, y  # a held batch may keep a loader's buffer from being recycled
    warm_s = time.perf_counter() - t

    passes: List[Tuple[int, float]] = []
    cpu0, t0 = tree_cpu_seconds(), time.perf_counter()
    while not passes or time.perf_counter() - t0 < spec["min_seconds"]:
        t = time.perf_counter()
        n = 0
        for x, _ in epoch():
            n += len(x)
        passes.append((n, time.perf_counter() - t))
    seconds = time.perf_counter() - t0
    cpu = tree_cpu_seconds() - cpu0
    pss = tree_pss_bytes()
    images = sum(n for n, _ in passes)
    return {
        "status": "ok",
        "setup_s": setup_s,
        "warmup_s": warm_s,
        "warmup_images": warm_images,
        "images_per_pass": sorted({n for n, _ in passes}),
        "passes": len(passes),
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "cpu_s": cpu,
        "cpu_ms_per_image": 1e3 * cpu / images,
        "cores_busy": cpu / seconds,
        "tree_pss_end_mb": pss / 1e6,
        "check": check,
    }


def main() -> None:
    name, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        result = run(name, spec)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which goes on with the others
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(e).__name__}: {e}"[:300]}
    result["own_peak_rss_mb"] = own_peak_rss_bytes() / 1e6
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
