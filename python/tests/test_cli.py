"""The installed ``stokehold`` command, end to end in temporary folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

from conftest import SHAPES_N

STOKEHOLD = str(Path(sys.executable).parent / "stokehold")


def run(args: List[str], cwd: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([STOKEHOLD, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_index_every_format_then_split(shapes: Path, tmp_path: Path) -> None:
    for source in ("images", "labels.csv", "instances.json", "voc"):
        out = run(["index", str(shapes / source), "-o", str(tmp_path / f"{source}.jsonl")], tmp_path)
        assert out.returncode == 0, out.stderr
        assert f"{SHAPES_N} samples, 6 classes" in out.stdout and "nothing skipped" in out.stdout
    out = run(["split", "images.jsonl", "--val", "0.1", "--seed", "0"], tmp_path)
    assert out.returncode == 0, out.stderr
    train = (tmp_path / "images.train.jsonl").read_text().splitlines()
    val = (tmp_path / "images.val.jsonl").read_text().splitlines()
    assert len(train) - 1 + len(val) - 1 == SHAPES_N
    assert len(val) - 1 == 6 * round(SHAPES_N / 6 * 0.1)


def test_findings_report_and_strict_exit_status(tmp_path: Path) -> None:
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "empty.jpg").write_bytes(b"")
    out = run(["index", "data", "-o", "m.jsonl", "--report", "r.json"], tmp_path)
    assert out.returncode == 0, "findings alone do not fail a run"
    assert "skipped 1 (empty_file 1)" in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["findings"][0]["kind"] == "empty_file"
    out = run(["index", "data", "-o", "strict.jsonl", "--strict"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("error: strict mode")
    assert not (tmp_path / "strict.jsonl").exists()


def test_module_entry_point_and_version(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "stokehold", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("stokehold ")
    out = run(["index", "missing", "-o", "m.jsonl"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: missing: no such file or directory"
