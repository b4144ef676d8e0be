"""Datasets in S3-compatible object storage, against a local server (moto)
started here on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

import stokehold
from stokehold.errors import InvalidArgumentError, SourceNotFoundError, StokeholdError

from conftest import interrupt

STOKEHOLD = str(Path(sys.executable).parent / "stokehold")
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def start_server() -> Any:
    from moto.server import ThreadedMotoServer

    # The threaded server binds every interface unless told otherwise.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    assert server._server.socket.getsockname()[0] == "127.0.0.1"
    return server


def client_of(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)


@pytest.fixture(scope="module")
def s3() -> Iterator[SimpleNamespace]:
    server = start_server()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    client = client_of(endpoint)
    client.create_bucket(Bucket="data")
    options = {"endpoint_url": endpoint, "region": "us-east-1", **KEYS}
    yield SimpleNamespace(endpoint=endpoint, client=client, options=options)
    server.stop()


def keys(client: Any, prefix: str) -> List[str]:
    listed = client.list_objects_v2(Bucket="data", Prefix=prefix).get("Contents", [])
    return sorted(o["Key"][len(prefix) :] for o in listed)


def everything(source: Any, **kw: Any) -> List[np.ndarray]:
    ds = stokehold.Dataset(
        source, batch_size=1000, shuffle=False, dtype="uint8", outputs=("images", "labels", "boxes", "indices"), **kw
    )
    return list(ds[0])


def epoch(source: Any, **kw: Any) -> List[Any]:
    ds = stokehold.Dataset(source, batch_size=16, seed=3, dtype="uint8", outputs=("images", "labels", "indices"), **kw)
    return [ds[i] for i in range(len(ds))]


def test_a_pack_to_s3_reads_back_as_the_local_copy(shapes: Path, s3: SimpleNamespace, tmp_path: Path) -> None:
    common = dict(size=(24, 32), storage="jpeg", samples_per_shard=32, progress=False)
    local = tmp_path / "local"
    stokehold.pack(shapes / "instances.json", local, **common)
    report = stokehold.pack(shapes / "instances.json", "s3://data/rt/", storage_options=s3.options, **common)
    assert (report.num_samples, report.num_shards) == (120, 4)
    assert report.path == "s3://data/rt/"
    assert keys(s3.client, "rt/") == ["dataset.json"] + [f"shard-{k:05}.h5" for k in range(4)]
    # Byte for byte the same shards and index as the local pack.
    for name in ("shard-00002.h5",):
        body = s3.client.get_object(Bucket="data", Key=f"rt/{name}")["Body"].read()
        assert body == (local / name).read_bytes()

    for a, b in zip(everything(local), everything("s3://data/rt/", storage_options=s3.options)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(epoch(local), epoch("s3://data/rt", storage_options=s3.options)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)

    info = stokehold.inspect("s3://data/rt/", storage_options=s3.options)
    assert (info["num_samples"], info["num_shards"]) == (120, 4)
    assert info["classes"] == stokehold.inspect(local)["classes"]
    drawn = stokehold.preview("s3://data/rt/dataset.json", tmp_path / "p.png", n=8, storage_options=s3.options)
    assert drawn == stokehold.preview(local, tmp_path / "q.png", n=8)
    assert (tmp_path / "p.png").stat().st_size > 0

    # A pickled Dataset (DataLoader workers) reads it again in the child.
    import pickle

    ds = stokehold.Dataset("s3://data/rt/", batch_size=8, shuffle=False, dtype="uint8", storage_options=s3.options)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ds))[3][0], ds[3][0])
    stats = ds.io_stats
    assert stats is not None and stats["requests"] >= 2 and stats["bytes"] > 0 and stats["retries"] == 0, stats
    assert stokehold.Dataset(local).io_stats is None

    # Again without force: refused; force replaces it.
    with pytest.raises(stokehold.errors.OutputExistsError):
        stokehold.pack(shapes / "instances.json", "s3://data/rt/", storage_options=s3.options, **common)
    stokehold.pack(shapes / "instances.json", "s3://data/rt/", storage_options=s3.options, force=True, **common)


def test_settings_come_from_the_aws_files_and_the_command_line_packs_parts(
    shapes: Path, s3: SimpleNamespace, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text(f"[profile lab]\nregion = us-east-1\nendpoint_url = {s3.endpoint}\n")
    (tmp_path / "credentials").write_text("[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_PROFILE="lab")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOKEHOLD, *args], capture_output=True, text=True, env=env)

    manifest = tmp_path / "m.jsonl"
    stokehold.index(shapes / "instances.json", progress=False).save(manifest)
    part = ["pack", str(manifest), "-o", "s3://data/parts/", "--size", "24", "--samples-per-shard", "32", "--quiet"]
    assert cli(*part, "--part", "0/2").returncode == 0
    r = cli("commit", "s3://data/parts/")
    assert r.returncode != 0 and "part-00001-of-00002 (not started)" in r.stderr, r.stderr
    r = cli("inspect", "s3://data/parts/")
    assert r.returncode != 0 and "not committed yet" in r.stderr, r.stderr
    assert cli(*part, "--part", "1/2").returncode == 0
    # A part already there is refused before the source is read (here it
    # is not even there), by the command line and by the Python API alike.
    r = cli("pack", str(tmp_path / "nothing"), *part[2:], "--part", "1/2")
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr
    with pytest.raises(stokehold.errors.OutputExistsError):
        stokehold.pack(tmp_path / "nothing", "s3://data/parts/", size=24, samples_per_shard=32, part=(1, 2), storage_options=s3.options)
    r = cli("commit", "s3://data/parts/")
    assert r.returncode == 0, r.stderr
    assert "committed 120 samples" in r.stdout
    r = cli("inspect", "s3://data/parts/", "--json")
    assert r.returncode == 0, r.stderr
    local = tmp_path / "one.h5"
    stokehold.pack(manifest, local, size=24, progress=False)
    # The Python API with the same files.
    script = "import stokehold, sys; ds = stokehold.Dataset('s3://data/parts/', batch_size=1000, shuffle=False, dtype='uint8'); sys.stdout.buffer.write(ds[0][0].tobytes())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == everything(local)[0].tobytes()


@pytest.mark.slow
def test_ray_packs_straight_into_object_storage(shapes: Path, s3: SimpleNamespace, tmp_path: Path) -> None:
    """stokehold.ray.pack to s3://: the tasks upload their parts (the
    manifest travels through Ray), the driver commits; a second pack is
    refused without force, and force replaces every part of the first."""
    local = tmp_path / "local"
    stokehold.pack(shapes / "instances.json", local, size=(24, 32), samples_per_shard=20, progress=False)
    code = textwrap.dedent(
        f"""
        import json
        import stokehold.ray as sr
        from stokehold.errors import OutputExistsError
        sr.init_local(2)  # before anything imports ray
        import ray
        common = dict(size=(24, 32), samples_per_shard=20, progress=False, storage_options={s3.options!r})
        report = sr.pack({str(shapes / "instances.json")!r}, "s3://data/ray/", parts=3, **common)
        try:
            sr.pack({str(shapes / "instances.json")!r}, "s3://data/ray/", parts=2, **common)
            refused = ""
        except OutputExistsError as e:
            refused = str(e)
        # Default sharding: one shard per part.
        del common["samples_per_shard"]
        again = sr.pack({str(shapes / "instances.json")!r}, "s3://data/ray/", parts=2, force=True, **common)
        ray.shutdown()
        print(json.dumps({{"first": [report.path, report.parts, report.num_samples, report.num_shards],
                          "refused": refused, "again": [again.parts, again.num_samples]}}))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout.splitlines()[-1])
    assert r["first"] == ["s3://data/ray/", 3, 120, 6]
    assert "s3://data/ray/" in r["refused"], r
    assert r["again"] == [2, 120]
    names = keys(s3.client, "ray/")
    # Only the second pack's parts are left (a shard and a record each),
    # and the index; no manifest.
    assert names[0] == "dataset.json" and len(names) == 1 + 2 * 2, names
    assert all(n.startswith(("part-00000-of-00002/", "part-00001-of-00002/")) for n in names[1:]), names
    assert sorted(os.listdir(tmp_path)) == ["local"]
    for a, b in zip(everything(local), everything("s3://data/ray/", storage_options=s3.options)):
        np.testing.assert_array_equal(a, b)
    from stokehold import ray as stokehold_ray

    with pytest.raises(InvalidArgumentError, match="storage_options"):
        stokehold_ray.pack(shapes / "instances.json", tmp_path / "x", storage_options=s3.options)


def test_a_missing_shard_is_an_error_at_open(shapes: Path, s3: SimpleNamespace) -> None:
    stokehold.pack(shapes / "instances.json", "s3://data/gone/", size=16, samples_per_shard=50, storage_options=s3.options, progress=False)
    s3.client.delete_object(Bucket="data", Key="gone/shard-00001.h5")
    with pytest.raises(SourceNotFoundError, match=r"s3://data/gone/shard-00001\.h5.*missing"):
        stokehold.Dataset("s3://data/gone/", storage_options=s3.options)
    with pytest.raises(SourceNotFoundError, match=r"s3://data/nothing/dataset\.json.*no packed dataset"):
        stokehold.Dataset("s3://data/nothing/", storage_options=s3.options)
    with pytest.raises(InvalidArgumentError, match="no_such_setting"):
        stokehold.Dataset("s3://data/gone/", storage_options={**s3.options, "no_such_setting": 1})
    with pytest.raises(InvalidArgumentError, match="retries"):
        stokehold.Dataset("s3://data/gone/", storage_options={**s3.options, "retries": "many"})
    with pytest.raises(InvalidArgumentError, match="shard"):
        stokehold.pack(shapes / "instances.json", "s3://data/one/", size=16, storage_options=s3.options, progress=False)


def test_the_server_stopped_in_the_middle_of_an_epoch_is_a_clear_error(shapes: Path) -> None:
    server = start_server()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    client_of(endpoint).create_bucket(Bucket="data")
    options = {"endpoint_url": endpoint, "region": "us-east-1", **KEYS, "retries": 2, "backoff": 0.05, "timeout": 5}
    stokehold.pack(shapes / "instances.json", "s3://data/ds/", size=16, samples_per_shard=30, storage_options=options, progress=False)
    ds = stokehold.Dataset("s3://data/ds/", batch_size=4, shuffle=False, storage_options=options, num_threads=2)
    ds[0], ds[1]
    server.stop()
    with pytest.raises(StokeholdError) as caught:
        for i in range(2, len(ds)):
            ds[i]
    message = str(caught.value)
    assert "s3://data/ds/shard-" in message and "sample" in message and "gave up after 3 attempts" in message, message


class CuttingProxy:
    """A relay on 127.0.0.1 in front of the server that cuts the body of the
    next `cuts` ranged GET responses short (half of it, then the connection
    closes)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.cuts = 0
        self.cut = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(conn,), daemon=True).start()

    @staticmethod
    def message(f: Any) -> Optional[bytes]:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline()
            if not line:
                return None
            head += line
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return head + f.read(length)

    def relay(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream))
        cf, uf = conn.makefile("rb"), up.makefile("rb")
        try:
            while True:
                request = self.message(cf)
                if request is None:
                    return
                up.sendall(request)
                response = self.message(uf)
                if response is None:
                    return
                ranged = request.startswith(b"GET") and b"\r\nrange:" in request.lower()
                with self.lock:
                    cut = ranged and self.cut < self.cuts
                    self.cut += cut
                if cut:
                    head, body = response.split(b"\r\n\r\n", 1)
                    conn.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
                    return
                conn.sendall(response)
        finally:
            conn.close()
            up.close()


@pytest.fixture
def relay(s3: SimpleNamespace) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


def test_a_response_cut_short_is_retried_then_reported(shapes: Path, s3: SimpleNamespace, relay: CuttingProxy) -> None:
    stokehold.pack(shapes / "instances.json", "s3://data/cut/", size=16, samples_per_shard=40, storage_options=s3.options, progress=False)
    proxy = relay
    options = {**s3.options, "endpoint_url": f"http://127.0.0.1:{proxy.port}", "retries": 3, "backoff": 0.01}
    want = everything("s3://data/cut/", storage_options=s3.options)
    # Two cuts, retried: the same data.
    proxy.cuts = 2
    got = everything("s3://data/cut/", storage_options=options)
    assert proxy.cut == 2
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    # Every response cut: an error naming the object and the cut, never a decoded image.
    proxy.cuts, proxy.cut = 10**6, 0
    with pytest.raises(StokeholdError, match=r"s3://data/cut/shard-0000\d\.h5.*cut short.*gave up after 4 attempts"):
        everything("s3://data/cut/", storage_options=options)


def test_the_cache_serves_a_second_epoch_without_the_server(
    shapes: Path, s3: SimpleNamespace, relay: CuttingProxy, tmp_path: Path
) -> None:
    stokehold.pack(shapes / "instances.json", "s3://data/cached/", size=16, samples_per_shard=40, storage_options=s3.options, progress=False)
    proxy = relay
    options = {**s3.options, "endpoint_url": f"http://127.0.0.1:{proxy.port}", "retries": 0}
    first = everything("s3://data/cached/", storage_options=options, cache_dir=tmp_path / "cache")
    # Now every ranged read through the relay fails: the samples come from the cache.
    proxy.cuts = 10**6
    again = everything("s3://data/cached/", storage_options=options, cache_dir=tmp_path / "cache")
    assert proxy.cut == 0
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(StokeholdError, match="cut short"):
        everything("s3://data/cached/", storage_options=options)
    with pytest.raises(InvalidArgumentError, match="cache_dir"):
        stokehold.Dataset("s3://data/cached/", storage_options=options, cache_limit="1GB")


@pytest.mark.slow
def test_processes_share_one_cache_while_it_evicts(shapes: Path, s3: SimpleNamespace, tmp_path: Path) -> None:
    """Four processes read three epochs each at once through one cache
    folder, kept far under the dataset's size so that blocks are written,
    read and evicted under each other: every batch equals the local copy's."""
    common = dict(size=16, samples_per_shard=8, progress=False)
    local = tmp_path / "local"
    stokehold.pack(shapes / "instances.json", local, **common)
    stokehold.pack(shapes / "instances.json", "s3://data/shared/", storage_options=s3.options, **common)
    cache = tmp_path / "cache"
    code = textwrap.dedent(
        """
        import hashlib, json, sys
        import stokehold
        source, options, cache = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
        kw = dict(storage_options=options, cache_dir=cache, cache_limit=50_000) if source.startswith("s3://") else {}
        ds = stokehold.Dataset(source, batch_size=8, seed=5, dtype="uint8", outputs=("images", "indices"), **kw)
        digests = []
        for epoch in range(3):
            ds.set_epoch(epoch)
            h = hashlib.sha256()
            for i in range(len(ds)):
                images, indices = ds[i]
                h.update(images.tobytes() + indices.tobytes())
            digests.append(h.hexdigest())
        print(json.dumps({"digests": digests, "stats": ds.io_stats}))
        """
    )

    def start(source: str) -> "subprocess.Popen[str]":
        args = [sys.executable, "-c", code, source, json.dumps(s3.options), str(cache)]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    expected = start(str(local)).communicate(timeout=120)[0]
    readers = [start("s3://data/shared/") for _ in range(4)]
    results = [r.communicate(timeout=300) for r in readers]
    for reader, (out, err) in zip(readers, results):
        assert reader.returncode == 0, err[-3000:]
        assert json.loads(out)["digests"] == json.loads(expected)["digests"]
    stats = [json.loads(out)["stats"] for out, _ in results]
    assert sum(s["cache_hits"] for s in stats) > 0, stats
    # No block left half written.
    assert not [p.name for p in cache.rglob(".block-*")]


def test_ctrl_c_stops_waiting_for_a_silent_server() -> None:
    # A server that accepts connections and never answers.
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    script = textwrap.dedent(
        f"""
        import stokehold
        print("ready", flush=True)
        try:
            stokehold.Dataset("s3://data/x/", storage_options={{"endpoint_url": "http://127.0.0.1:{port}",
                "region": "us-east-1", "aws_access_key_id": "a", "aws_secret_access_key": "b", "timeout": 120}})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    try:
        line, waited, status = interrupt(script, 1.0)
    finally:
        silent.close()
    assert (line, status) == ("interrupted", 0)
    # A hang guard, not a speed target: the wait is polled every 100 ms.
    assert waited < 5.0, f"took {waited:.2f}s to react to Ctrl-C"


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    doc = Path(__file__).resolve().parents[2] / "docs" / "object-storage.md"
    local = doc.read_text().split("## Trying it locally", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", local, flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(doc), "exec"), {"__name__": "doc"})
    assert (tmp_path / "data" / "shapes-s3" / "local" / "dataset.json").exists()
