"""Shared fixtures: the bundled shapes dataset, generated once per session."""

from __future__ import annotations

from pathlib import Path

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
