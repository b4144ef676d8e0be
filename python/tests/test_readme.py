"""The README's Python examples are tested code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stokehold.datasets import make_shapes

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has Python examples"
    make_shapes(tmp_path / "data" / "shapes", n=24, seed=0)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert os.path.exists(tmp_path / "data" / "shapes" / "train.jsonl")
