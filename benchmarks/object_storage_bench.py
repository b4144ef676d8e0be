"""Object-storage benchmark: shuffled uint8 batches from shards in a local
S3-compatible server (its own process, bound to 127.0.0.1) against a Python
loop that fetches the same samples with boto3 ``get_object(Range=...)`` one
at a time, and the same loop on 8 threads (and on 32, not a target: against
moto, what the server answers at most). One run, side by side.

    python benchmarks/object_storage_bench.py [--samples 4096] [--rounds 3] [--out bench-out]
        [--server moto|s3s] [--s3s-server PATH]

Two servers, each in its own process on 127.0.0.1: moto (Python, what the
tests use; it answers about 300 range requests a second on 2 cores and
closes every connection, so it bounds every client alike) and ``s3s``, the
file-system S3 store of the ``s3s`` project (Rust, hyper) in
``benchmarks/s3-server`` (``make bench`` builds it), which leaves the bound
to the clients.

The dataset: ``--samples`` generated 64×64 images packed raw (12,288 bytes a
sample) into shards of 512 in the bucket. Each method reads one epoch of
batches of 64 in the order of ``stokehold.Dataset(shuffle=True, seed=0)``
(epoch 0), and every method's batches are checked equal to stokehold's.
Requests and bytes per batch are counted by the client
(``Dataset.io_stats``), over batches made one at a time
(``Dataset.batch``) after the loader's read-ahead has settled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
SERVER = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


def start_server(kind: str, binary: str, root: Path) -> "tuple[subprocess.Popen[str], str]":
    """The server in its own process, listening on 127.0.0.1 only, and its URL."""
    if kind == "moto":
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert server.stdout is not None
        return server, f"http://127.0.0.1:{int(server.stdout.readline())}"
    root.mkdir(parents=True, exist_ok=True)
    if not os.path.isfile(binary):
        raise SystemExit(
            f"{binary}: not built (cargo build --release --locked --manifest-path benchmarks/s3-server/Cargo.toml)"
        )
    server = subprocess.Popen(
        [binary, str(root), KEYS["aws_access_key_id"], KEYS["aws_secret_access_key"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.strip().isdigit():
        server.kill()
        raise SystemExit(f"{binary} did not start (its error is above)")
    return server, f"http://127.0.0.1:{int(line)}"


def make_images(root: Path, n: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(8):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"c{i % 8}" / f"{i:06}.png")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench-out")
    p.add_argument("--server", choices=("moto", "s3s"), default="moto")
    p.add_argument(
        "--s3s-server", default=str(ROOT / "benchmarks" / "s3-server" / "target" / "release" / "stokehold-bench-s3-server")
    )
    a = p.parse_args()
    import boto3
    import stokehold

    store = tempfile.TemporaryDirectory()
    try:
        server, endpoint = start_server(a.server, a.s3s_server, Path(store.name) / "root")
    except BaseException:
        store.cleanup()
        raise
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
        s3.create_bucket(Bucket="bench")
        options = {"endpoint_url": endpoint, "region": "us-east-1", **KEYS}
        with tempfile.TemporaryDirectory() as tmp:
            images = make_images(Path(tmp) / "images", a.samples)
            stokehold.pack(images, "s3://bench/ds/", size=64, samples_per_shard=512, progress=False, storage_options=options)
        index = json.loads(s3.get_object(Bucket="bench", Key="ds/dataset.json")["Body"].read())
        index_bytes = len(json.dumps(index))
        shards = index["shards"]
        sample_bytes = shards[0]["sample_bytes"]
        # Where every sample is: (key, first byte, last byte).
        where = []
        for sh in shards:
            for i in range(sh["num_samples"]):
                start = sh["data_offset"] + i * sample_bytes
                where.append((f"ds/{sh['path']}", start, start + sample_bytes - 1))

        def dataset() -> Any:
            return stokehold.Dataset(
                "s3://bench/ds/", batch_size=64, shuffle=True, seed=0, dtype="uint8",
                outputs=("images", "indices"), storage_options=options, num_threads=2,
            )

        # The order and the reference batches.
        ds = dataset()
        reference = [ds[i] for i in range(len(ds))]
        ds.close()
        order = [b[1].tolist() for b in reference]

        # Requests and bytes per batch: batches made one at a time once the
        # read-ahead (prefetch window) has filled and stopped.
        ds = dataset()
        time.sleep(2.0)
        before = ds.io_stats
        for i in range(len(ds)):
            ds.batch(0, i)
        after = ds.io_stats
        ds.close()
        batches = len(order)
        per_batch = {
            "requests": (after["requests"] - before["requests"]) / batches,
            "bytes": (after["bytes"] - before["bytes"]) / batches,
            "sample_bytes": 64 * sample_bytes,
        }
        per_batch["bytes_ratio"] = per_batch["bytes"] / per_batch["sample_bytes"]
        print("per batch:", json.dumps(per_batch))

        def fetch(index: int) -> np.ndarray:
            key, first, last = where[index]
            body = s3.get_object(Bucket="bench", Key=key, Range=f"bytes={first}-{last}")["Body"].read()
            return np.frombuffer(body, dtype=np.uint8).reshape(64, 64, 3)

        def boto3_serial() -> List[np.ndarray]:
            return [np.stack([fetch(i) for i in batch]) for batch in order]

        pool = ThreadPoolExecutor(8)

        def boto3_threads() -> List[np.ndarray]:
            return [np.stack(list(pool.map(fetch, batch))) for batch in order]

        wide = ThreadPoolExecutor(32)

        def boto3_wide() -> List[np.ndarray]:
            # Not a target: against moto, how many requests the server answers at most.
            return [np.stack(list(wide.map(fetch, batch))) for batch in order]

        def ours() -> List[np.ndarray]:
            ds = dataset()
            out = [ds[i][0] for i in range(len(ds))]
            ds.close()
            return out

        methods = {
            "stokehold": ours,
            "boto3 loop": boto3_serial,
            "boto3 8 threads": boto3_threads,
            "boto3 32 threads": boto3_wide,
        }
        rates: Dict[str, List[float]] = {k: [] for k in methods}
        cpu: Dict[str, List[float]] = {k: [] for k in methods}
        for r in range(a.rounds):
            for name, run in methods.items():
                t = time.perf_counter()
                u = resource.getrusage(resource.RUSAGE_SELF)
                got = run()
                seconds = time.perf_counter() - t
                v = resource.getrusage(resource.RUSAGE_SELF)
                # This process only: the server is another process.
                cpu[name].append(1e3 * (v.ru_utime + v.ru_stime - u.ru_utime - u.ru_stime) / a.samples)
                if r == 0:
                    for k, (x, ref) in enumerate(zip(got, reference)):
                        if not np.array_equal(x, ref[0]):
                            raise SystemExit(f"{name}: batch {k} differs from stokehold's")
                rates[name].append(a.samples / seconds)
                print(f"round {r}: {name:16} {a.samples / seconds:8.0f} images/s, client {cpu[name][-1]:.2f} CPU ms/image", flush=True)
        pool.shutdown()
        wide.shutdown()
        med = {k: statistics.median(v) for k, v in rates.items()}
        results = {
            "server": a.server,
            "samples": a.samples,
            "shards": len(shards),
            "index_bytes": index_bytes,
            "per_batch": per_batch,
            "images_per_s": rates,
            "median_images_per_s": med,
            "client_cpu_ms_per_image": {k: statistics.median(v) for k, v in cpu.items()},
            "vs_boto3_loop": med["stokehold"] / med["boto3 loop"],
            "vs_boto3_8_threads": med["stokehold"] / med["boto3 8 threads"],
            "worst_round_vs_boto3_loop": min(x / y for x, y in zip(rates["stokehold"], rates["boto3 loop"])),
            "worst_round_vs_boto3_8_threads": min(x / y for x, y in zip(rates["stokehold"], rates["boto3 8 threads"])),
        }
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / ("object_storage.json" if a.server == "moto" else f"object_storage-{a.server}.json")).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({k: v for k, v in results.items() if k != "images_per_s"}, indent=2))
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)
        store.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    main()
