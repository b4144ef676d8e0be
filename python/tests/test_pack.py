"""stokehold.pack: the file h5py reads, pixels, geometry, inputs, errors, safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import h5py
import numpy as np
import pytest
from PIL import Image, ImageOps

import stokehold

from conftest import SHAPES_N

STOKEHOLD = str(Path(sys.executable).parent / "stokehold")


def reference(
    path: str, size: Tuple[int, int], policy: str, channels: int = 3, fill: int = 0, draft: bool = False
) -> np.ndarray:
    """An independent decode + resize with Pillow, same geometry; with
    ``draft``, a JPEG decoded at a DCT scale first, as
    ``Image.draft(mode, (width, height))`` of the output does."""
    with Image.open(path) as im:
        if draft:
            im.draft(im.mode, (size[1], size[0]))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        # Colour sources go to gray through RGB (BT.601 luma), as stokehold does.
        if channels == 1 and im.mode not in ("L", "I;16"):
            im = im.convert("RGB")
        im = im.convert("L" if channels == 1 else "RGB")
        h, w = size
        sw, sh = im.size
        if policy == "stretch":
            out = im.resize((w, h), Image.BILINEAR)
        elif policy == "crop":
            scale = max(w / sw, h / sh)
            cw, ch = min(w / scale, sw), min(h / scale, sh)
            box = ((sw - cw) / 2, (sh - ch) / 2, (sw + cw) / 2, (sh + ch) / 2)
            out = im.resize((w, h), Image.BILINEAR, box=box)
        else:
            scale = min(w / sw, h / sh)
            nw, nh = max(1, min(w, round(sw * scale))), max(1, min(h, round(sh * scale)))
            out = Image.new(im.mode, (w, h), fill if channels == 1 else (fill,) * 3)
            out.paste(im.resize((nw, nh), Image.BILINEAR), ((w - nw) // 2, (h - nh) // 2))
        arr = np.asarray(out)
        return arr[..., None] if channels == 1 else arr


def expected_boxes(box: Tuple[float, ...], src: Tuple[int, int], size: Tuple[int, int], policy: str) -> List[float]:
    """Independent box math: source (w, h) → output (h, w), clipped."""
    sw, sh = src
    h, w = size
    if policy == "stretch":
        sx, sy, ox, oy, cx, cy = w / sw, h / sh, 0.0, 0.0, 0.0, 0.0
        lo, hi = (0.0, 0.0), (w, h)
    elif policy == "crop":
        s = max(w / sw, h / sh)
        sx = sy = s
        cx, cy = (sw - w / s) / 2, (sh - h / s) / 2
        ox = oy = 0.0
        lo, hi = (0.0, 0.0), (w, h)
    else:
        s = min(w / sw, h / sh)
        nw, nh = max(1, min(w, round(sw * s))), max(1, min(h, round(sh * s)))
        sx, sy = nw / sw, nh / sh
        ox, oy = (w - nw) // 2, (h - nh) // 2
        cx = cy = 0.0
        lo, hi = (ox, oy), (ox + nw, oy + nh)
    x0, y0, x1, y1 = box
    mapped = [ox + (x0 - cx) * sx, oy + (y0 - cy) * sy, ox + (x1 - cx) * sx, oy + (y1 - cy) * sy]
    return [
        min(max(mapped[0], lo[0]), hi[0]),
        min(max(mapped[1], lo[1]), hi[1]),
        min(max(mapped[2], lo[0]), hi[0]),
        min(max(mapped[3], lo[1]), hi[1]),
    ]


@pytest.fixture(scope="module")
def packed(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, stokehold.PackReport]:
    out = tmp_path_factory.mktemp("packed") / "shapes.h5"
    report = stokehold.pack(shapes / "instances.json", out, size=(96, 128))
    return out, report


def test_h5py_reads_every_field(packed: Tuple[Path, stokehold.PackReport], shapes: Path) -> None:
    path, report = packed
    assert report.num_samples == SHAPES_N and report.num_skipped == 0 and report.findings == []
    manifest = stokehold.index(shapes / "instances.json")
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "stokehold" and a["format_version"] == 2
        assert a["num_samples"] == SHAPES_N
        assert list(a["image_shape"]) == [96, 128, 3]
        assert a["storage"] == "raw" and a["resize"] == "stretch" and a["filter"] == "bilinear"
        assert list(f["classes"].asstr()[:]) == manifest.classes
        assert list(f["class_counts"][:]) == manifest.class_counts()
        assert a["pixel_count"] == SHAPES_N * 96 * 128
        assert f["images"].shape == (SHAPES_N, 96, 128, 3) and f["images"].dtype == np.uint8
        assert f["images"].chunks is None, "contiguous: the loader reads samples at known offsets"
        assert list(f["labels"][:]) == [s.label for s in manifest]
        assert f["box_offsets"][-1] == f["boxes"].shape[0] == f["box_labels"].shape[0] == manifest.num_boxes
        assert [p for p in f["paths"].asstr()[:]] == [s.path for s in manifest]
        assert [tuple(x) for x in f["orig_sizes"][:]] == [(s.height, s.width) for s in manifest]
        assert list(f["source_index"][:]) == list(range(SHAPES_N))
        offsets = f["box_offsets"][:]
        for i, s in enumerate(manifest):
            got = f["boxes"][offsets[i] : offsets[i + 1]]
            want = [expected_boxes(b.bbox, (s.width, s.height), (96, 128), "stretch") for b in s.boxes]
            np.testing.assert_allclose(got, np.array(want, dtype=np.float64).reshape(-1, 4), atol=1e-3)
            assert list(f["box_labels"][offsets[i] : offsets[i + 1]]) == [b.label for b in s.boxes]


def quality_bound(path: str, size: Tuple[int, int], policy: str, ref: np.ndarray, fill: int = 0) -> float:
    """What a sample's mean absolute difference from the full-size reference
    may be: 2 levels (resamplers differ), or, for a JPEG decoded at a DCT
    scale, what Pillow's ``draft`` is off the same reference (plus 0.1: at
    the same DCT scale the two resamplers still differ by a hair)."""
    drafted = reference(path, size, policy, fill=fill, draft=True).astype(np.int16)
    return max(2.0, float(np.abs(drafted - ref).mean()) + 0.1)


def test_pixels_match_an_independent_decode(packed: Tuple[Path, stokehold.PackReport]) -> None:
    path, _ = packed
    with h5py.File(path, "r") as f:
        paths = f["paths"].asstr()[:]
        for i in range(0, SHAPES_N, 7):
            ours = f["images"][i].astype(np.int16)
            ref = reference(paths[i], (96, 128), "stretch").astype(np.int16)
            diff = np.abs(ours - ref).mean()
            assert diff < quality_bound(paths[i], (96, 128), "stretch", ref), f"sample {i}: mean abs difference {diff:.2f}"


def test_statistics_match_numpy(packed: Tuple[Path, stokehold.PackReport]) -> None:
    path, report = packed
    with h5py.File(path, "r") as f:
        pixels = f["images"][:].reshape(-1, 3).astype(np.float64)
        np.testing.assert_allclose(f.attrs["mean"], pixels.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(f.attrs["std"], pixels.std(axis=0), rtol=1e-7)
    np.testing.assert_allclose(report.mean, pixels.mean(axis=0), rtol=1e-9)


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "crop"])
def test_each_resize_policy_geometry_and_boxes(shapes: Path, tmp_path: Path, policy: str) -> None:
    manifest = stokehold.index(shapes / "voc")[:0]  # classes only
    full = stokehold.index(shapes / "voc")
    subset = [full[i] for i in range(0, len(full), 15)]
    out = tmp_path / f"{policy}.h5"
    stokehold.pack(full, out, size=(64, 80), resize=policy, fill=17)
    with h5py.File(out, "r") as f:
        assert f.attrs["resize"] == policy and f.attrs["fill"] == 17
        offsets = f["box_offsets"][:]
        paths = list(f["paths"].asstr()[:])
        for s in subset:
            i = paths.index(s.path)
            ref = reference(s.path, (64, 80), policy, fill=17).astype(np.int16)
            bound = quality_bound(s.path, (64, 80), policy, ref, fill=17)
            assert np.abs(f["images"][i].astype(np.int16) - ref).mean() < bound, (policy, s.path)
            want = []
            for b in s.boxes:
                e = expected_boxes(b.bbox, (s.width, s.height), (64, 80), policy)
                if e[2] > e[0] and e[3] > e[1]:
                    want.append(e)
            got = f["boxes"][offsets[i] : offsets[i + 1]]
            np.testing.assert_allclose(got, np.array(want).reshape(-1, 4), atol=1e-3)
    assert manifest is not None


def make_inputs(root: Path) -> Dict[str, Path]:
    """One image per awkward input kind, 60×40 as displayed."""
    d = root / "inputs" / "thing"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), "RGB").resize((60, 40))
    files: Dict[str, Path] = {}

    def save(name: str, im: Image.Image, **kw: object) -> None:
        files[name] = d / name
        im.save(files[name], **kw)

    save("gray.jpg", base.convert("L"), quality=95)
    save("progressive.jpg", base, quality=95, progressive=True)
    save("cmyk.jpg", base.convert("CMYK"), quality=95)
    save("palette.png", base.convert("P", palette=Image.ADAPTIVE, colors=16))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((60, 40)))
    save("alpha.png", rgba)
    save("gray_alpha.png", rgba.convert("LA"))
    # 16-bit gray: Pillow clips (not scales) 16-bit to 8-bit, so the
    # reference for it is the 8-bit image it was made from, kept aside.
    save("gray16.png", Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257))
    base.convert("L").save(root / "gray16_reference.png")
    save("plain.bmp", base)
    save("anim.gif", base.convert("P"), save_all=True, append_images=[base.convert("P").rotate(90)])
    save("lossless.webp", base, lossless=True)
    save("plain.tiff", base)
    # EXIF orientations: the stored pixels are transformed so that every
    # displayed image is `base`.
    inverse = {
        2: [Image.FLIP_LEFT_RIGHT],
        3: [Image.ROTATE_180],
        4: [Image.FLIP_TOP_BOTTOM],
        5: [Image.TRANSPOSE],
        6: [Image.ROTATE_90],
        7: [Image.TRANSVERSE],
        8: [Image.ROTATE_270],
    }
    for o, ops in inverse.items():
        stored = base
        for op in ops:
            stored = stored.transpose(op)
        exif = Image.Exif()
        exif[0x0112] = o
        save(f"orient{o}.jpg", stored, quality=95, exif=exif.tobytes())
    return files


def test_awkward_inputs_decode_like_pillow(tmp_path: Path) -> None:
    files = make_inputs(tmp_path)
    for channels in (3, 1):
        out = tmp_path / f"inputs{channels}.h5"
        report = stokehold.pack(tmp_path / "inputs", out, size=(40, 60), channels=channels)
        assert report.findings == [] and report.num_samples == len(files)
        with h5py.File(out, "r") as f:
            assert f["images"].shape[-1] == channels
            for i, p in enumerate(f["paths"].asstr()[:]):
                ours = f["images"][i].astype(np.int16)
                ref_path = str(tmp_path / "gray16_reference.png") if p.endswith("gray16.png") else p
                ref = reference(ref_path, (40, 60), "stretch", channels=channels).astype(np.int16)
                diff = np.abs(ours - ref).mean()
                # CMYK conversion formulas differ between decoders by a few levels.
                limit = 6.0 if "cmyk" in p else 2.5
                assert diff < limit, f"{Path(p).name}, {channels} channel(s): mean abs difference {diff:.2f}"
                if "orient" in p:
                    assert tuple(f["orig_sizes"][i]) == (40, 60), p


def test_encoded_storage(shapes: Path, tmp_path: Path, packed: Tuple[Path, stokehold.PackReport]) -> None:
    raw_path, _ = packed
    for storage in ("png", "jpeg"):
        out = tmp_path / f"{storage}.h5"
        stokehold.pack(shapes / "instances.json", out, size=(96, 128), storage=storage, quality=85)
        info = stokehold.inspect(out)
        assert info["storage"] == "encoded" and info["codec"] == storage
        with h5py.File(out, "r") as f, h5py.File(raw_path, "r") as r:
            assert "images" not in f and f["offsets"].shape == (SHAPES_N + 1,)
            assert f["data"].chunks is None, "contiguous: every sample is one pread"
            import io

            offsets = f["offsets"][:]
            for i in (0, 50, 119):
                stored = f["data"][offsets[i] : offsets[i + 1]]
                img = np.asarray(Image.open(io.BytesIO(stored.tobytes())))
                diff = np.abs(img.astype(np.int16) - r["images"][i].astype(np.int16)).mean()
                assert diff == 0 if storage == "png" else diff < 4.0
        assert os.path.getsize(out) < os.path.getsize(raw_path)


def test_bad_samples_are_skipped_reported_or_fatal_in_strict_mode(shapes: Path, tmp_path: Path) -> None:
    d = tmp_path / "bad" / "c"
    d.mkdir(parents=True)
    good = sorted((shapes / "images" / "circle").glob("*.jpg"))[:3]
    for g in good:
        (d / g.name).write_bytes(g.read_bytes())
    data = good[0].read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "zz_garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 2000)
    manifest = stokehold.index(tmp_path / "bad")
    out = tmp_path / "bad.h5"
    report = stokehold.pack(manifest, out, size=32)
    assert report.num_samples + report.num_skipped == len(manifest)
    assert report.num_skipped >= 1
    assert all(f.kind == "not_an_image" and f.skipped for f in report.findings)
    with h5py.File(out, "r") as f:
        assert f["images"].shape[0] == report.num_samples
        names = [Path(p).name for p in f["paths"].asstr()[:]]
        assert set(names) >= {g.name for g in good}
        assert "zz_garbage.jpg" not in names
    with pytest.raises(stokehold.StrictModeError) as info:
        stokehold.pack(manifest, tmp_path / "strict.h5", size=32, strict=True)
    assert info.value.findings and not (tmp_path / "strict.h5").exists()
    assert not list(tmp_path.glob(".stokehold-*")), "temporary files are removed"


def test_existing_output_needs_force(packed: Tuple[Path, stokehold.PackReport], shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    out.write_bytes(b"precious")
    with pytest.raises(stokehold.OutputExistsError):
        stokehold.pack(shapes / "labels.csv", out, size=16)
    assert out.read_bytes() == b"precious"
    stokehold.pack(shapes / "labels.csv", out, size=16, force=True)
    assert stokehold.inspect(out)["num_samples"] == SHAPES_N
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask, "an ordinary file, not a private temporary one"


def test_two_packs_are_identical(shapes: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    stokehold.pack(shapes / "labels.csv", a, size=(48, 48), resize="letterbox", num_threads=1)
    stokehold.pack(shapes / "labels.csv", b, size=(48, 48), resize="letterbox", num_threads=2)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert set(fa) == set(fb)
        for name in fa:
            assert np.array_equal(fa[name][:], fb[name][:]), name
        for key in fa.attrs:
            assert np.array_equal(np.asarray(fa.attrs[key]), np.asarray(fb.attrs[key])), key


def test_inspect_and_preview(packed: Tuple[Path, stokehold.PackReport], tmp_path: Path) -> None:
    path, report = packed
    info = stokehold.inspect(path)
    assert info["num_samples"] == SHAPES_N and info["image_shape"] == (96, 128, 3)
    assert info["file_bytes"] == os.path.getsize(path) and info["num_boxes"] > SHAPES_N
    chosen = stokehold.preview(path, tmp_path / "grid.png", n=10, seed=3)
    assert len(chosen) == 10 and chosen == sorted(set(chosen))
    assert stokehold.preview(path, tmp_path / "again.png", n=10, seed=3) == chosen
    with Image.open(tmp_path / "grid.png") as im:
        # 4 columns (ceil(sqrt(10))) × 3 rows of 96×128 images zoomed ×2 (tiles are
        # at least 160 px), each with a 14-px caption under it, 6-px gaps.
        cols, zoom, caption, gap = 4, 2, 14, 6
        assert im.size == (cols * (128 * zoom + gap) + gap, 3 * (96 * zoom + caption + gap) + gap)
    out = subprocess.run([STOKEHOLD, "inspect", str(path), "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["num_samples"] == SHAPES_N
    with pytest.raises(stokehold.InvalidFileError):
        (tmp_path / "not.h5").write_bytes(b"nope")
        stokehold.inspect(tmp_path / "not.h5")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_pack_leaves_nothing_under_the_final_name(shapes: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "big.h5"
    # Large outputs, one worker: the pack runs for seconds.
    cmd = [STOKEHOLD, "pack", str(shapes / "images"), "-o", str(out), "--size", "1024x1024", "--threads", "1"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".stokehold-*.h5.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert child.poll() is None, "the pack finished before it could be interrupted"
    child.send_signal(sig)
    child.wait(timeout=30)
    assert child.stderr is not None
    child.stderr.close()
    assert not out.exists()
    if sig == signal.SIGINT:
        assert child.returncode == 130
        assert not list(tmp_path.glob(".stokehold-*")), "a clean stop removes its temporary file"


def test_disk_full_is_reported_and_the_temporary_file_removed(shapes: Path, tmp_path: Path) -> None:
    """A file-size limit makes writes fail with EFBIG, as a full disk does with ENOSPC."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    out = tmp_path / "full.h5"
    cmd = [STOKEHOLD, "pack", str(shapes / "images"), "-o", str(out), "--size", "256x256", "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert len(result.stderr.strip().splitlines()) == 1 and last.startswith("error:"), result.stderr
    assert "File too large" in last, last
    assert not out.exists()
    assert not list(tmp_path.glob(".stokehold-*")), "the temporary file is removed"
