"""JPEG decoding at the scale the output needs (libjpeg-turbo's DCT
scaling), against a full-size decode with an antialiased resize; boxes
exact under every EXIF orientation."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, Tuple

import h5py
import numpy as np
import pytest
from PIL import Image, ImageOps

import stokehold

SIZE = (224, 224)


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A photo-like image: smooth structure with texture, `w × h`."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (h // 40 + 2, w // 40 + 2, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    fine = rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(coarse, np.float64) + fine, 0, 255).astype(np.uint8))


def corpus(root: Path) -> Dict[str, Tuple[int, int]]:
    """Big JPEGs of every kind; returns name → displayed (w, h)."""
    d = root / "big" / "c"
    d.mkdir(parents=True)
    base = photo(1600, 1200, 0)
    made: Dict[str, Tuple[int, int]] = {}

    def save(name: str, im: Image.Image, displayed: Tuple[int, int], **kw: object) -> None:
        im.save(d / name, quality=92, **kw)
        made[name] = displayed

    save("baseline.jpg", base, (1600, 1200))
    save("progressive.jpg", base, (1600, 1200), progressive=True)
    save("gray.jpg", base.convert("L"), (1600, 1200))
    save("cmyk.jpg", base.convert("CMYK"), (1600, 1200))
    save("subsampled.jpg", photo(1000, 700, 1), (1000, 700), subsampling=2)
    save("small.jpg", photo(500, 400, 2), (500, 400))
    inverse = {2: [Image.FLIP_LEFT_RIGHT], 3: [Image.ROTATE_180], 4: [Image.FLIP_TOP_BOTTOM], 5: [Image.TRANSPOSE],
               6: [Image.ROTATE_90], 7: [Image.TRANSVERSE], 8: [Image.ROTATE_270]}
    for o, ops in inverse.items():
        stored = base
        for op in ops:
            stored = stored.transpose(op)
        exif = Image.Exif()
        exif[0x0112] = o
        save(f"orient{o}.jpg", stored, (1600, 1200), exif=exif.tobytes())
    return made


def reference(path: Path, draft: bool) -> np.ndarray:
    """Pillow: full decode (or `draft` at the least scale ≥ the output), orientation, antialiased bilinear resize."""
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", SIZE)
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.asarray(im.resize((SIZE[1], SIZE[0]), Image.BILINEAR), np.float64)


def test_scaled_decoding_stays_close_to_a_full_decode(tmp_path: Path) -> None:
    made = corpus(tmp_path)
    out = tmp_path / "p.h5"
    report = stokehold.pack(tmp_path / "big", out, size=SIZE, progress=False)
    assert report.findings == []
    rows = []
    with h5py.File(out) as f:
        for i, p in enumerate(f["paths"].asstr()[:]):
            ours = f["images"][i].astype(np.float64)
            full = reference(Path(p), draft=False)
            pillow_draft = reference(Path(p), draft=True)
            ours_mae = float(np.abs(ours - full).mean())
            draft_mae = float(np.abs(pillow_draft - full).mean())
            rows.append((Path(p).name, ours_mae, draft_mae))
            # CMYK: the conversion formula differs between libjpeg and Pillow by a few levels.
            limit = 6.0 if "cmyk" in p else 1.0
            assert ours_mae <= limit, f"{Path(p).name}: MAE {ours_mae:.2f} against a full decode"
            assert ours_mae <= max(draft_mae, 0.5) + (5.0 if "cmyk" in p else 0.0), f"{Path(p).name}: {ours_mae:.2f} vs Pillow draft {draft_mae:.2f}"
            assert tuple(f["orig_sizes"][i][::-1]) == made[Path(p).name], "the displayed size"
    print("\n".join(f"{n}: ours {a:.3f}, Pillow draft {b:.3f}" for n, a, b in rows))


def test_boxes_follow_the_pixels_under_every_orientation(tmp_path: Path) -> None:
    made = corpus(tmp_path)
    names = [n for n in made if n.startswith("orient") or n == "baseline.jpg"]
    # One box in displayed coordinates, the same for every image (they all display the same picture).
    rows = "\n".join(f"big/c/{n},thing,400,300,1200,900" for n in names)
    (tmp_path / "l.csv").write_text("path,label,x_min,y_min,x_max,y_max\n" + rows + "\n")
    out = tmp_path / "b.h5"
    stokehold.pack(tmp_path / "l.csv", out, size=(120, 160), progress=False)
    with h5py.File(out) as f:
        boxes = f["boxes"][:]
        np.testing.assert_allclose(boxes, [[40.0, 30.0, 120.0, 90.0]] * len(names), atol=1e-4)
        base = f["images"][0].astype(np.float64)
        for i in range(1, len(names)):
            assert np.abs(f["images"][i].astype(np.float64) - base).mean() < 1.5, "the same picture, displayed"
    # Just in time, with a random resized crop drawn on the full-size image: boxes stay inside.
    ds = stokehold.Dataset(tmp_path / "l.csv", size=(120, 160), batch_size=len(names), shuffle=False, normalize=False,
                           dtype="uint8", augment={"random_resized_crop": ((0.3, 0.6), (0.75, 1.33))}, outputs=("images", "boxes", "box_counts"), progress=False)
    images, boxes, counts = ds[0]
    assert images.shape == (len(names), 120, 160, 3)
    for b, k in zip(boxes, counts):
        assert (b[:k, 0] >= 0).all() and (b[:k, 2] <= 160).all() and (b[:k, 3] <= 120).all()


def test_the_decompression_bomb_guard_holds_just_in_time(tmp_path: Path) -> None:
    """A JPEG whose header claims more than ``max_pixels`` is refused by the
    just-in-time decoder too (at the full size it claims, whatever DCT
    scale it would be decoded at), naming the file."""
    d = tmp_path / "imgs" / "c"
    d.mkdir(parents=True)
    photo(1600, 1200, 3).save(d / "big.jpg", quality=80)
    manifest = stokehold.index(tmp_path / "imgs")
    ds = stokehold.Dataset(manifest, 1, size=(64, 64), normalize=False, dtype="uint8", max_pixels=1_000_000)
    with pytest.raises(stokehold.SampleError, match=r"big\.jpg.*(pixels|megapixels)"):
        ds[0]
