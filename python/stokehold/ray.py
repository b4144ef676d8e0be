"""Packing on a Ray cluster: ``stokehold.ray.pack``.

The dataset is packed in parts, one Ray task each, into a directory of
shards, and committed on the driver: the same samples, order and pixels as
``stokehold.pack(..., shard_size=...)`` on one machine. The driver indexes
the source once and writes the manifest into the output directory
(``manifest.jsonl``); every task reads it and the images **from paths it
can see**: the images and the output directory must be on a file system
that every node mounts at the same path (NFS, Lustre, a cloud file system).
With an output in object storage (``s3://bucket/prefix/``) only the images
need to be seen by every node: the manifest travels through Ray, and each
task uploads its shards itself.

Ray is an optional extra (``pip install 'stokehold[ray]'``), imported only
here. With no ``address`` and no running Ray, a local Ray is started for
the call (listening on 127.0.0.1 only, no dashboard) and stopped after it;
with ``address`` (or ``RAY_ADDRESS``), the existing cluster is joined.

Any other scheduler does the same with ``stokehold pack … --part i/N`` per
task and ``stokehold commit DIR`` at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from . import _checks, _native
from .errors import InvalidArgumentError
from .manifest import Manifest, PathLike
from .pack import TaskManifest, _manifest_of, commit

__all__ = ["pack", "RayPackReport", "init_local"]

#: The manifest the driver writes for the tasks, in the output directory.
MANIFEST_NAME = "manifest.jsonl"


class RayPackReport(NamedTuple):
    """What :func:`pack` did."""

    path: str
    num_samples: int
    num_skipped: int
    num_shards: int
    parts: int
    mean: List[float]
    std: List[float]
    seconds: float
    findings: List[Tuple[str, str, str]]
    """``(kind, path, message)`` of every sample skipped or repaired."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - exercised without ray
        raise ImportError("stokehold.ray needs Ray: pip install 'stokehold[ray]'") from e
    return ray


def init_local(num_cpus: Optional[int] = None) -> None:
    """Starts a local Ray whose every listener is on 127.0.0.1, without the
    dashboard or usage statistics (Ray on Linux otherwise listens on every
    interface)."""
    # Ray reads these when it is first imported (its servers inherit them);
    # a Ray imported earlier without them binds every interface.
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        warnings.warn(
            "Ray was imported before stokehold.ray.init_local could keep it on 127.0.0.1: its servers"
            " will listen on every interface. Set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray.",
            RuntimeWarning,
            stacklevel=2,
        )
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = _ray()
    ray.init(
        address="local",
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )


def _pack_part(
    manifest: Union[str, bytes], out: str, part: int, parts: int, size: Tuple[int, int], options: Dict[str, Any]
) -> Dict[str, Any]:
    """One Ray task: part ``part`` of ``parts``. ``manifest`` is a path on
    the shared file system, or (for an output in object storage, where the
    nodes may share no file system) the manifest file's bytes."""
    import tempfile

    import stokehold

    if isinstance(manifest, bytes):
        with tempfile.TemporaryDirectory(prefix="stokehold-ray-") as tmp:
            path = os.path.join(tmp, MANIFEST_NAME)
            with open(path, "wb") as f:
                f.write(manifest)
            report = stokehold.pack(TaskManifest(path), out, size, part=(part, parts), progress=False, **options)
    else:
        report = stokehold.pack(manifest, out, size, part=(part, parts), progress=False, **options)
    return {
        "num_samples": report.num_samples,
        "num_skipped": report.num_skipped,
        "seconds": report.seconds,
        "findings": [(f.kind, f.path, f.message) for f in report.findings],
    }


def pack(
    source: Union[PathLike, Manifest],
    out: PathLike,
    size: Union[int, Tuple[int, int]] = (224, 224),
    *,
    parts: Optional[int] = None,
    address: Optional[str] = None,
    num_threads: Optional[int] = None,
    force: bool = False,
    progress: Optional[bool] = None,
    format: str = "auto",
    shard_size: Optional[Union[int, str]] = None,
    samples_per_shard: Optional[int] = None,
    storage_options: Optional[Mapping[str, Any]] = None,
    **options: Any,
) -> RayPackReport:
    """Packs ``source`` into the dataset directory ``out`` with Ray tasks.

    ``parts`` Ray tasks (default: the cluster's CPUs, at most one per
    sample) each run ``stokehold.pack(manifest, out, size, part=(i, parts),
    ...)`` with ``num_threads`` threads (default 1, and that many CPUs asked
    of Ray per task); the driver then calls :func:`stokehold.commit`. The
    other keywords are :func:`stokehold.pack`'s (``resize``, ``filter``,
    ``channels``, ``storage``, ``quality``, ``fill``, ``strict``,
    ``max_pixels``, ``max_file_bytes``); ``shard_size`` /
    ``samples_per_shard`` cut each part into shards (default: one shard per
    part). ``progress`` shows a bar of finished parts.

    ``out`` may be in object storage, ``"s3://bucket/prefix/"``, with
    ``storage_options`` as for :class:`stokehold.Dataset` (or the ``AWS_*``
    variables and ``~/.aws`` files on every node): each task then packs its
    part in a temporary folder and uploads each shard as it is complete
    (the nodes need no shared file system; the manifest travels through
    Ray), and the driver writes the index last. ``force`` first removes the
    dataset there, its index first.
    """
    unknown = set(options) - {"resize", "filter", "channels", "storage", "quality", "fill", "strict", "max_pixels", "max_file_bytes"}
    if unknown:
        raise InvalidArgumentError(f"unknown option(s) {sorted(unknown)} for stokehold.ray.pack")
    remote, store = _checks.output_storage(os.fspath(out), storage_options)
    ray = _ray()
    threads = _checks.optional_integer("num_threads", num_threads, 1) or 1
    hw = _checks.size("size", size)
    out = os.fspath(out) if remote else os.path.abspath(os.fspath(out))
    _native.check_output(out, bool(force), True, None, store)
    start = time.monotonic()
    started_here = False
    if not ray.is_initialized():
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address or os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            init_local()
        started_here = True
    try:
        found = _manifest_of(source, format, bool(options.get("strict", False)), None, progress, options.get("max_pixels", _native.DEFAULT_MAX_PIXELS), options.get("max_file_bytes", _native.DEFAULT_MAX_FILE_BYTES))
        manifest = found if isinstance(found, Manifest) else Manifest.load(found)
        task_manifest: Any
        if remote:
            # Removes what force replaces, the index first.
            _native.check_output(out, bool(force), True, None, store, clear=True)
            task_manifest = ray.put(_manifest_bytes(manifest))
        else:
            if force:
                _clear(out)
            os.makedirs(out, exist_ok=True)
            task_manifest = os.path.join(out, MANIFEST_NAME)
            manifest.save(task_manifest)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = _checks.integer("parts", parts, 1) if parts is not None else max(1, cpus // threads)
        n = max(1, min(n, len(manifest)))
        task_options: Dict[str, Any] = dict(options)
        task_options.update(num_threads=threads, force=force, shard_size=shard_size, samples_per_shard=samples_per_shard)
        if remote:
            task_options["storage_options"] = storage_options
        task = ray.remote(num_cpus=threads, max_retries=0)(_pack_part)
        refs = [task.remote(task_manifest, out, i, n, hw, task_options) for i in range(n)]
        results = _wait(ray, refs, progress)
        report = commit(out, storage_options=storage_options)
    finally:
        if started_here:
            ray.shutdown()
    findings = [f for r in results for f in r["findings"]]
    return RayPackReport(
        path=out,
        num_samples=report.num_samples,
        num_skipped=sum(r["num_skipped"] for r in results),
        num_shards=report.num_shards,
        parts=n,
        mean=report.mean,
        std=report.std,
        seconds=time.monotonic() - start,
        findings=findings,
    )


def _wait(ray: Any, refs: List[Any], progress: Optional[bool]) -> List[Dict[str, Any]]:
    """The tasks' results in part order, with a bar of finished parts."""
    from ._progress import Bar

    pending = list(refs)
    with Bar("packing parts", progress) as callback:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if callback is not None:
                callback(len(refs) - len(pending), len(refs))
    # ray.get raises a task's own error (a StokeholdError names the sample).
    return [ray.get(r) for r in refs]


def _manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest file's bytes, for tasks on nodes without a shared file system."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="stokehold-ray-") as tmp:
        path = os.path.join(tmp, MANIFEST_NAME)
        manifest.save(path)
        with open(path, "rb") as f:
            return f.read()


def _clear(out: str) -> None:
    """What an earlier pack left in ``out`` (its index, shards, parts, manifest)."""
    import shutil

    if not os.path.isdir(out):
        return
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if name in ("dataset.json", MANIFEST_NAME) or (name.startswith("shard-") and name.endswith(".h5")):
            os.remove(path)
        elif name.startswith("part-") and os.path.isdir(path):
            shutil.rmtree(path)


def _cli_pack(options_json: str) -> str:
    """``stokehold pack --engine ray``: the command line's options, as JSON."""
    o = json.loads(options_json)
    keep = {k: o[k] for k in ("resize", "filter", "channels", "storage", "quality", "fill", "strict", "max_pixels", "max_file_bytes")}
    report = pack(
        o["source"],
        o["out"],
        tuple(o["size"]),
        parts=o["parts"],
        address=o["address"],
        num_threads=o["num_threads"],
        force=o["force"],
        progress=None if o["progress"] else False,
        format=o["format"],
        shard_size=o["shard_size"],
        samples_per_shard=o["samples_per_shard"],
        **keep,
    )
    return (
        f"{report.path}: {report.num_samples} samples in {report.num_shards} shard(s) from {report.parts} Ray task(s);"
        f" skipped {report.num_skipped}; {report.seconds:.1f}s"
    )
