"""The native boundary: GIL release, Ctrl-C, threads and fork safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import stokehold

from conftest import interrupt

PNG_HEADER = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\0\0\0\0"


def many_files(root: Path, n: int, per_class: int = 1000) -> Path:
    for i in range(n):
        d = root / f"c{i // per_class:03d}"
        if i % per_class == 0:
            d.mkdir(parents=True)
        (d / f"{i:06d}.png").write_bytes(PNG_HEADER)
    return root


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return many_files(tmp_path_factory.mktemp("big"), 30_000)


@pytest.mark.slow
def test_index_releases_the_gil(big_tree: Path) -> None:
    result = {}

    def work() -> None:
        result["m"] = stokehold.index(big_tree, num_threads=1)

    t = threading.Thread(target=work)
    ticks = 0
    t.start()
    while t.is_alive():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert len(result["m"]) == 30_000
    # A call that held the GIL would freeze this loop for its whole length.
    assert ticks > 20, f"main thread ran only {ticks} times while indexing"


@pytest.mark.slow
def test_ctrl_c_interrupts_promptly(big_tree: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time, stokehold
        print("ready", flush=True)
        try:
            for _ in range(1000):
                stokehold.index({str(big_tree)!r}, num_threads=1)
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    line, waited, _ = interrupt(script, 0.5)
    assert line == "interrupted"
    # A hang guard, not a speed target: the poll is every 20 ms.
    assert waited < 2.0, f"took {waited:.2f}s to react to Ctrl-C"


def test_forked_child_indexes(tmp_path: Path) -> None:
    root = many_files(tmp_path / "t", 50, per_class=10)
    assert len(stokehold.index(root)) == 50
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            ok = len(stokehold.index(root, num_threads=2)) == 50
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.slow
def test_thread_count_setting(big_tree: Path) -> None:
    """STOKEHOLD_NUM_THREADS sets how many probing threads run (seen in /proc)."""
    script = textwrap.dedent(
        f"""
        import glob, threading, stokehold
        done = threading.Event()
        seen = set()
        def watch():
            while not done.is_set():
                for comm in glob.glob("/proc/self/task/*/comm"):
                    try:
                        name = open(comm).read().strip()
                    except OSError:
                        continue
                    if name.startswith("stokehold-ix"):
                        seen.add(comm)
        w = threading.Thread(target=watch)
        w.start()
        m = stokehold.index({str(big_tree)!r})
        done.set()
        w.join()
        print(len(m), len(seen))
        """
    )
    for value in ("1", "3"):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", script],
            env={**os.environ, "STOKEHOLD_NUM_THREADS": value},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["30000", value]
