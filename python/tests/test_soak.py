"""Soak: many epochs with shuffling and augmentation, many open/close
cycles; memory, descriptors and threads return to their baseline (the long
run is `benchmarks/soak.py --epochs 200`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_nothing_grows_over_epochs_and_open_close_cycles() -> None:
    out = subprocess.run(
        [sys.executable, str(SOAK), "--epochs", "40", "--cycles", "150", "--n", "128"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.splitlines()[-1])
    assert r["samples_seen"] == 40 * 128
    assert r["fd_growth"] == 0 and r["thread_growth"] == 0, r
    # Within noise: the allocator may keep a few freed pages.
    assert r["rss_growth_mb"] < 16, r
