"""Shared fixtures: the bundled shapes dataset, generated once per session."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import pytest

import stokehold
from stokehold.datasets import make_shapes

# The tests run against the installed package, not the source tree.
assert "site-packages" in stokehold.__file__, f"stokehold imported from {stokehold.__file__}, not the installed wheel"

SHAPES_N = 120


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small copy of the bundled dataset (120 images, seed 0), written four ways."""
    return make_shapes(tmp_path_factory.mktemp("shapes"), n=SHAPES_N, seed=0)


def interrupt(script: str, delay: float) -> Tuple[str, float, int]:
    """Runs `script` in a child Python, which prints "ready" when it starts its
    long call; sends SIGINT `delay` seconds later. Returns the child's next
    line, the seconds from the signal to that line, and its exit status."""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    line = child.stdout.readline().strip()
    waited = time.monotonic() - sent
    child.stdout.close()
    return line, waited, child.wait(timeout=30)
