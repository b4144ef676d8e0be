"""The packed file format: the documented h5py snippet runs, old files stay readable."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import stokehold

DOCS = Path(__file__).resolve().parents[2] / "docs" / "format.md"
DATA = Path(__file__).resolve().parent / "data"


def test_format_doc_snippet_reads_every_field(shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    snippet = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)[0]
    for storage in ("raw", "jpeg"):
        out = tmp_path / "data" / "shapes.h5"
        stokehold.pack(shapes / "instances.json", out, size=32, storage=storage, force=True)
        monkeypatch.chdir(tmp_path)
        exec(compile(snippet, str(DOCS), "exec"), {"__name__": "doc"})
    # Every dataset and attribute the file holds is named in the document.
    text = DOCS.read_text()
    with h5py.File(out, "r") as f:
        for name in list(f) + list(f.attrs):
            assert f"`{name}`" in text or f"`/{name}`" in text, name


def test_frozen_version_1_files_still_read(tmp_path: Path) -> None:
    expected = json.loads((DATA / "format_v1_raw.json").read_text())
    raw = DATA / "format_v1_raw.h5"
    info = stokehold.inspect(raw)
    assert info["format_version"] == 1 and info["storage"] == "raw" and info["resize"] == "letterbox"
    assert info["classes"] == expected["classes"]
    np.testing.assert_allclose(info["mean"], expected["mean"])
    with h5py.File(raw, "r") as f:
        assert hashlib.sha256(f["images"][:].tobytes()).hexdigest() == expected["images_sha256"]
        assert f["labels"][:].tolist() == expected["labels"]
        assert f["boxes"][:].tolist() == expected["boxes"]
        assert f["box_offsets"][:].tolist() == expected["box_offsets"]
        assert [p.endswith(e) for p, e in zip(f["paths"].asstr()[:], expected["paths"])] == [True] * len(expected["paths"])
    jpeg = stokehold.inspect(DATA / "format_v1_jpeg.h5")
    assert jpeg["storage"] == "encoded" and jpeg["codec"] == "jpeg" and jpeg["quality"] == 80
    assert len(stokehold.preview(DATA / "format_v1_jpeg.h5", tmp_path / "frozen.png", n=4)) == 4


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "future.h5"
    copy.write_bytes((DATA / "format_v1_raw.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["format_version"] = np.uint32(3)
    with pytest.raises(stokehold.InvalidFileError, match="newer"):
        stokehold.inspect(copy)


def test_frozen_version_2_files_still_read(tmp_path: Path) -> None:
    """Raw and JPEG storage of format 2, frozen: stokehold and h5py read the same values."""
    expected = json.loads((DATA / "format_v2.json").read_text())
    raw, jpeg = DATA / "format_v2_raw.h5", DATA / "format_v2_jpeg.h5"
    info = stokehold.inspect(raw)
    assert info["format_version"] == 2 and info["storage"] == "raw" and info["resize"] == "letterbox"
    assert info["classes"] == expected["classes"]
    np.testing.assert_allclose(info["mean"], expected["mean"])
    with h5py.File(raw, "r") as f:
        images = f["images"][:]
        assert hashlib.sha256(images.tobytes()).hexdigest() == expected["images_sha256"]
        assert f["labels"][:].tolist() == expected["labels"]
        assert f["boxes"][:].tolist() == expected["boxes"]
        assert f["box_offsets"][:].tolist() == expected["box_offsets"]
        assert [p.endswith(e) for p, e in zip(f["paths"].asstr()[:], expected["paths"])] == [True] * len(expected["paths"])
    batch = stokehold.Dataset(raw, batch_size=12, shuffle=False, dtype="uint8", outputs=("images", "labels", "boxes"))[0]
    np.testing.assert_array_equal(batch[0], images)
    assert batch[1].tolist() == expected["labels"]
    with h5py.File(jpeg, "r") as f:
        assert hashlib.sha256(f["data"][:].tobytes()).hexdigest() == expected["jpeg_data_sha256"]
        assert f["offsets"][:].tolist() == expected["jpeg_offsets"]
    decoded = stokehold.Dataset(jpeg, batch_size=12, shuffle=False, dtype="uint8", outputs="images")[0]
    assert decoded.shape == (12, 16, 16, 3)
    assert len(stokehold.preview(jpeg, tmp_path / "frozen2.png", n=4)) == 4
