"""The examples run, on the bundled dataset (small where the point is the data path)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, args: List[str], cwd: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


@pytest.mark.slow
def test_keras_classifier_learns(tmp_path: Path) -> None:
    """The demo's model has visibly learned: at least 0.85 (it used to stop at 0.48; chance is 1/6)."""
    stdout = run("keras_classifier.py", ["--data", str(tmp_path / "data")], tmp_path)
    match = re.search(r"validation accuracy: ([0-9.]+) \(evaluate\), ([0-9.]+) \(predict", stdout)
    assert match, stdout
    evaluate, predict = float(match.group(1)), float(match.group(2))
    assert abs(evaluate - predict) < 1e-6, "predict rows come back in sample order"
    assert evaluate >= 0.85, f"accuracy {evaluate} < 0.85\n{stdout}"
    assert (tmp_path / "preview.png").exists()


@pytest.mark.slow
def test_torch_classifier_with_worker_processes(tmp_path: Path) -> None:
    stdout = run("torch_classifier.py", ["--data", str(tmp_path), "--n", "240", "--epochs", "1", "--num-workers", "2"], tmp_path)
    assert "epoch 1: loss" in stdout


def test_jax_loop(tmp_path: Path) -> None:
    stdout = run("jax_loop.py", ["--data", str(tmp_path), "--n", "200", "--epochs", "2"], tmp_path)
    assert "epoch 2: mean loss" in stdout


def test_detection_boxes(tmp_path: Path) -> None:
    stdout = run("detection_boxes.py", ["--data", str(tmp_path), "--n", "40"], tmp_path)
    assert "boxes (8, " in stdout and (tmp_path / "boxes-preview.png").exists()


def test_fcn_buckets(tmp_path: Path) -> None:
    stdout = run("fcn_buckets.py", ["--data", str(tmp_path), "--n", "240", "--epochs", "1"], tmp_path)
    pad = re.search(r"padding: ([0-9.]+)% of the batches' pixels with buckets, ([0-9.]+)% letterboxed", stdout)
    assert pad and float(pad.group(1)) < float(pad.group(2)), stdout
    match = re.search(r"validation accuracy: ([0-9.]+) \(evaluate\), ([0-9.]+) \(predict", stdout)
    assert match and match.group(1) == match.group(2), "predict rows, reordered, are the samples evaluate saw"


def test_index_tour(shapes: Path, tmp_path: Path) -> None:
    stdout = run("index_tour.py", [str(shapes)], tmp_path)
    assert "split:" in stdout


@pytest.mark.slow
def test_keras_data_parallel_on_two_processes(tmp_path: Path) -> None:
    """Two jax processes (gloo on the CPU) train one replicated model, each
    fed its own share: identical losses on both ranks show the gradients
    were averaged across them."""
    stdout = run("keras_data_parallel.py", ["--data", str(tmp_path), "--processes", "2", "--n", "240", "--epochs", "1"], tmp_path)
    shares = re.findall(r"rank (\d)/2: (\d+) samples an epoch in (\d+) batches", stdout)
    assert sorted(shares) == [("0", "120", "8"), ("1", "120", "8")], stdout
    losses = re.findall(r"rank \d: loss ([0-9.]+) -> ([0-9.]+)", stdout)
    assert len(losses) == 2 and losses[0] == losses[1], stdout
    assert "trained data-parallel on 2 processes" in stdout
