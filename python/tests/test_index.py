"""stokehold.index and Manifest on the bundled dataset, every source format."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import stokehold
from stokehold.datasets import CLASSES

from conftest import SHAPES_N

Content = Dict[str, Tuple[str, int, int, List[Tuple[Tuple[float, ...], str]]]]


def content(m: stokehold.Manifest) -> Content:
    """Per image id: class, size and boxes — what every source must agree on.

    Boxes are compared as a set: the bundled CSV groups its rows by class (so
    that first appearance gives the sorted class order), which changes the
    order of an image's boxes but not what they are.
    """
    return {
        Path(s.path).stem: (s.class_name, s.width, s.height, sorted((b.bbox, b.class_name) for b in s.boxes))
        for s in m
    }


@pytest.fixture(scope="module")
def manifests(shapes: Path) -> Dict[str, stokehold.Manifest]:
    return {
        "folder": stokehold.index(shapes / "images"),
        "csv": stokehold.index(shapes / "labels.csv"),
        "coco": stokehold.index(shapes / "instances.json"),
        "voc": stokehold.index(shapes / "voc"),
    }


def test_every_source_gives_the_same_content(manifests: Dict[str, stokehold.Manifest]) -> None:
    for fmt, m in manifests.items():
        assert m.source is not None and m.source[0] == fmt
        assert m.classes == list(CLASSES), fmt
        assert len(m) == SHAPES_N, fmt
        assert m.findings == [], fmt
    detection = [content(manifests[f]) for f in ("csv", "coco", "voc")]
    assert detection[0] == detection[1] == detection[2]
    folder = content(manifests["folder"])
    assert {k: v[:3] for k, v in folder.items()} == {k: v[:3] for k, v in detection[0].items()}
    assert manifests["csv"].num_boxes > SHAPES_N


def test_labels_match_the_generator(manifests: Dict[str, stokehold.Manifest]) -> None:
    m = manifests["coco"]
    assert m.class_counts() == [SHAPES_N // len(CLASSES)] * len(CLASSES)
    for s in m:
        # The generator files each image under the class of its largest shape.
        assert Path(s.path).parent.name == s.class_name
        largest = max(s.boxes, key=lambda b: (b.bbox[2] - b.bbox[0]) * (b.bbox[3] - b.bbox[1]))
        assert largest.class_name == s.class_name
        assert s.format == "jpeg" and 160 // 2 <= min(s.width, s.height) and max(s.width, s.height) <= 640
        for b in s.boxes:
            x0, y0, x1, y1 = b.bbox
            assert 0 <= x0 < x1 <= s.width and 0 <= y0 < y1 <= s.height


def test_manifest_sequence_protocol(manifests: Dict[str, stokehold.Manifest]) -> None:
    m = manifests["folder"]
    assert m[-1].path == m[len(m) - 1].path
    assert [s.path for s in m[2:5]] == [m[i].path for i in range(2, 5)]
    with pytest.raises(IndexError):
        m[len(m)]
    assert "120 samples, 6 classes" in repr(m)
    assert m[0].label == 0 and m[0].class_name == "circle"


def test_save_load_round_trip_is_exact(manifests: Dict[str, stokehold.Manifest], tmp_path: Path) -> None:
    m = manifests["voc"]
    m.save(tmp_path / "m.jsonl")
    back = stokehold.Manifest.load(tmp_path / "m.jsonl")
    assert content(back) == content(m)
    assert [s.path for s in back] == [s.path for s in m]
    assert back.classes == m.classes
    header = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    assert header["format"] == "stokehold-manifest" and header["format_version"] == 2
    # Indexing the saved manifest re-checks its files and gives it back.
    again = stokehold.index(tmp_path / "m.jsonl")
    assert content(again) == content(m)


def test_indexing_is_deterministic(shapes: Path, tmp_path: Path) -> None:
    a = stokehold.index(shapes / "labels.csv", num_threads=1)
    b = stokehold.index(shapes / "labels.csv", num_threads=2)
    a.save(tmp_path / "a.jsonl")
    b.save(tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_split_is_stratified_disjoint_and_deterministic(manifests: Dict[str, stokehold.Manifest]) -> None:
    m = manifests["folder"]
    train, val = m.split(val=0.25, seed=3)
    assert len(train) + len(val) == len(m)
    assert val.class_counts() == [5] * len(CLASSES)
    assert not {s.path for s in train} & {s.path for s in val}
    assert [s.path for s in m.split(0.25, 3)[1]] == [s.path for s in val]
    assert [s.path for s in m.split(0.25, 4)[1]] != [s.path for s in val]
    with pytest.raises(stokehold.InvalidArgumentError):
        m.split(val=1.5)


def broken_copy(shapes: Path, dest: Path) -> Path:
    """A copy of the dataset's COCO source with one of each problem planted."""
    coco = json.loads((shapes / "instances.json").read_text())
    images = coco["images"][:12]
    keep = {im["id"] for im in images}
    anns = [a for a in coco["annotations"] if a["image_id"] in keep]
    for im in images:
        src = shapes / im["file_name"]
        (dest / src.parent.name).mkdir(parents=True, exist_ok=True)
        im["file_name"] = f"{src.parent.name}/{src.name}"
        shutil.copy(src, dest / im["file_name"])
    first = images[0]
    (dest / images[1]["file_name"]).unlink()  # missing_file
    (dest / images[2]["file_name"]).write_bytes(b"")  # empty_file
    (dest / images[3]["file_name"]).write_text("not a picture")  # not_an_image
    images.append({"id": 9001, "file_name": first["file_name"]})  # duplicate_path
    by_image = {im["id"]: [a for a in anns if a["image_id"] == im["id"]] for im in images}
    a4 = by_image[images[4]["id"]][0]
    a4["bbox"] = [-10.0, -10.0, a4["bbox"][2] + 10, a4["bbox"][3] + 10]  # box_clipped
    a5 = by_image[images[5]["id"]][0]
    a5["bbox"] = [a5["bbox"][0], a5["bbox"][1], 0, 5]  # box_degenerate
    by_image[images[6]["id"]][0]["category_id"] = 77  # unknown_class
    coco["images"], coco["annotations"] = images, anns
    (dest / "instances.json").write_text(json.dumps(coco))
    return dest / "instances.json"


def test_every_finding_is_reported_and_the_rest_indexed(shapes: Path, tmp_path: Path) -> None:
    source = broken_copy(shapes, tmp_path)
    m = stokehold.index(source)
    kinds = sorted(f.kind for f in m.findings)
    assert kinds == sorted(
        ["missing_file", "empty_file", "not_an_image", "duplicate_path", "box_clipped", "box_degenerate", "unknown_class"]
    )
    assert len(m) == 12 - 4  # missing, empty, not an image, unknown class; the duplicate was extra
    for f in m.findings:
        assert os.path.exists(f.path) or f.kind == "missing_file"
        assert f.message and str(f).startswith(f.path)
        assert f.skipped == (f.kind not in ("box_clipped", "box_degenerate"))
    small = stokehold.index(source, max_pixels=1000)
    assert {f.kind for f in small.findings} >= {"too_large"}
    assert len(small) == 0


def test_strict_mode_raises_with_every_finding(shapes: Path, tmp_path: Path) -> None:
    source = broken_copy(shapes, tmp_path)
    with pytest.raises(stokehold.StrictModeError) as info:
        stokehold.index(source, strict=True)
    assert isinstance(info.value, ValueError)
    assert len(info.value.findings) == 7
    assert "missing_file" in str(info.value)


def test_errors_name_the_file_and_use_the_hierarchy(tmp_path: Path) -> None:
    with pytest.raises(stokehold.SourceNotFoundError, match="nowhere") as info:
        stokehold.index(tmp_path / "nowhere")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, stokehold.StokeholdError)
    (tmp_path / "bad.json").write_text('{"images": [}')
    with pytest.raises(stokehold.InvalidSourceError, match=r"bad\.json.*line 1"):
        stokehold.index(tmp_path / "bad.json")
    (tmp_path / "m.jsonl").write_text('{"format":"stokehold-manifest","format_version":1,"classes":[]}\n{"path": 3}\n')
    with pytest.raises(stokehold.InvalidSourceError, match=r"m\.jsonl, line 2"):
        stokehold.Manifest.load(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match="format must be one of"):
        stokehold.index(tmp_path, format="parquet")


def test_classes_option_fixes_order_and_flags_the_rest(shapes: Path) -> None:
    m = stokehold.index(shapes / "images", classes=["star", "circle"])
    assert m.classes == ["star", "circle"]
    assert {s.class_name for s in m} == {"star", "circle"}
    assert {f.kind for f in m.findings} == {"unknown_class"}
    assert len(m) + len(m.findings) == SHAPES_N


def test_progress_bar_when_asked_and_silence_when_not(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """index and pack show a progress bar (tqdm when installed) like the CLI."""
    stokehold.index(shapes / "images", progress=True)
    stokehold.pack(shapes / "images", tmp_path / "p.h5", size=8, progress=True)
    err = capsys.readouterr().err
    assert "indexing" in err and "packing" in err and f"{SHAPES_N}/{SHAPES_N}" in err, err[-500:]
    stokehold.index(shapes / "images", progress=False)
    stokehold.pack(shapes / "images", tmp_path / "q.h5", size=8, progress=False)
    assert capsys.readouterr().err == ""
    # Off a terminal (as here under pytest), the default is silence.
    stokehold.index(shapes / "images")
    assert capsys.readouterr().err == ""
