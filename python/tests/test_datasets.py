"""The bundled sample dataset generator."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Dict

from stokehold.datasets import CLASSES, make_shapes


def digests(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = digests(make_shapes(tmp_path / "a", n=8, seed=1))
    b = digests(make_shapes(tmp_path / "b", n=8, seed=1))
    c = digests(make_shapes(tmp_path / "c", n=8, seed=2))
    assert a == b
    assert a.keys() == c.keys()
    assert a["images/circle/00000.jpg"] != c["images/circle/00000.jpg"]


def test_processes_draw_the_same_bytes(tmp_path: Path) -> None:
    """`make demo` draws 6,000 images in one process per core: same output as one process."""
    one = digests(make_shapes(tmp_path / "one", n=40, seed=3))
    two = digests(make_shapes(tmp_path / "two", n=40, seed=3, workers=2))  # chunks of 5: both processes draw
    assert one == two and len(one) > 40


def test_layout_sizes_and_annotations(shapes: Path) -> None:
    with open(shapes / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    coco = json.loads((shapes / "instances.json").read_text())
    assert [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])] == list(CLASSES)
    assert len(rows) == len(coco["annotations"])
    n = len(coco["images"])
    assert len(list((shapes / "voc" / "Annotations").glob("*.xml"))) == n
    assert len(list((shapes / "voc" / "JPEGImages").glob("*.jpg"))) == n
    per_image: Dict[int, int] = {}
    for a in coco["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert set(per_image.values()) <= {1, 2, 3, 4} and len(per_image) == n
    for im in coco["images"]:
        assert 160 <= max(im["width"], im["height"]) <= 640
        assert (shapes / im["file_name"]).stat().st_size > 1000


def test_an_existing_complete_dataset_is_reused(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "d", n=3, seed=0)
    stamp = (root / "images" / "circle" / "00000.jpg").stat().st_mtime_ns
    make_shapes(tmp_path / "d", n=3, seed=0)
    assert (root / "images" / "circle" / "00000.jpg").stat().st_mtime_ns == stamp
    make_shapes(tmp_path / "d", n=4, seed=0)
    assert (root / "images" / "square" / "00003.jpg").exists()
