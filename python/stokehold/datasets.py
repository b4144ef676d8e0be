"""The bundled sample dataset: coloured shapes on real-photo backgrounds.

:func:`make_shapes` draws a small, real-looking detection and classification
dataset, deterministically from a seed: JPEG images 160-640 px on the longer
side, each with one to four shapes (circle, cross, hexagon, square, star,
triangle) on a background cut from a photograph shipped inside scikit-image
(or a procedural texture). An image's class is the kind of its largest shape
(by box area); every shape has a box. The same content is written four ways,
so that every index path is exercised on the same data::

    out/images/<class>/<id>.jpg          class-per-folder tree
    out/labels.csv                       path,label,x_min,y_min,x_max,y_max
    out/instances.json                   COCO instances
    out/voc/Annotations/<id>.xml         Pascal VOC (JPEGImages/ hard links)

Needs ``numpy``, ``Pillow`` and ``scikit-image`` (``pip install
stokehold[sample]``). From the shell: ``python -m stokehold.datasets OUT
--n 2000 --seed 0``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

__all__ = ["CLASSES", "ShapeBox", "make_shapes", "main"]

#: The shape kinds, which are also the class names, in sorted order.
CLASSES: Tuple[str, ...] = ("circle", "cross", "hexagon", "square", "star", "triangle")

# Photographs that scikit-image ships in its wheel (no download needed).
_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "color.png",
    "ihc.png",
    "grass.png",
    "gravel.png",
    "brick.png",
)

_STAMP = ".stokehold-shapes.json"


@dataclass(frozen=True)
class ShapeBox:
    """One drawn shape: its kind and its box in pixels (continuous coordinates)."""

    kind: str
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @property
    def area(self) -> int:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min)


def _require() -> Tuple[Any, Any, Any]:
    try:
        import numpy
        from PIL import Image, ImageDraw
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "the sample dataset needs numpy, Pillow and scikit-image: pip install 'stokehold[sample]'"
        ) from e
    return numpy, Image, ImageDraw


def _load_photos() -> List["PILImage.Image"]:
    _, Image, _ = _require()
    try:
        import skimage
    except ImportError:
        return []
    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in _PHOTOS:
        path = folder / name
        if path.exists():
            with Image.open(path) as im:
                photos.append(im.convert("RGB"))
    return photos


def _background(rng: "np.random.Generator", w: int, h: int, photos: Sequence["PILImage.Image"]) -> "PILImage.Image":
    np, Image, _ = _require()
    if photos and rng.random() < 0.75:
        photo = photos[int(rng.integers(len(photos)))]
        pw, ph = photo.size
        # The largest crop of the target's aspect, then a random zoom into it.
        scale = min(pw / w, ph / h) * float(rng.uniform(0.35, 1.0))
        cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
        x = int(rng.integers(0, pw - cw + 1))
        y = int(rng.integers(0, ph - ch + 1))
        bg = photo.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
        if rng.random() < 0.5:
            bg = bg.transpose(Image.FLIP_LEFT_RIGHT)
        return bg
    # Procedural texture: a two-colour gradient with stripes and noise.
    c0, c1 = rng.integers(0, 256, size=(2, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / (w + h)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    period = rng.uniform(8, 48)
    stripes = 0.15 * np.sin(2 * math.pi * (xx * math.sin(angle) - yy * math.cos(angle)) / period)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    img = img * (1 + stripes[..., None]) + rng.normal(0, 6, size=(h, w, 3))
    texture: "PILImage.Image" = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return texture


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> List[Tuple[float, float]]:
    """Vertices of a shape of circumradius ``r`` centred at ``(cx, cy)``."""
    if kind == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    elif kind == "hexagon":
        pts = [(math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)) for k in range(6)]
    elif kind == "star":
        pts = []
        for k in range(10):
            rad = 1.0 if k % 2 == 0 else 0.42
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
    elif kind == "square":
        s = 1 / math.sqrt(2)
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif kind == "cross":
        a, b = 0.3, 0.95
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    else:
        raise ValueError(kind)
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in pts]


def _place(
    rng: "np.random.Generator", kind: str, r: float, w: int, h: int
) -> Tuple[ShapeBox, Optional[List[Tuple[float, float]]]]:
    """Places a shape of circumradius ``r`` fully inside the image."""
    # Squares stay near axis-aligned; the other polygons turn freely.
    angle = float(rng.uniform(-0.25, 0.25)) if kind == "square" else float(rng.uniform(0, 2 * math.pi))
    unit = None if kind == "circle" else _polygon(kind, 0.0, 0.0, r, angle)
    if unit is None:
        lo_x, lo_y, hi_x, hi_y = -r, -r, r, r
    else:
        lo_x, hi_x = min(p[0] for p in unit), max(p[0] for p in unit)
        lo_y, hi_y = min(p[1] for p in unit), max(p[1] for p in unit)
    cx = float(rng.uniform(-lo_x, w - hi_x))
    cy = float(rng.uniform(-lo_y, h - hi_y))
    box = ShapeBox(
        kind,
        max(0, math.floor(cx + lo_x)),
        max(0, math.floor(cy + lo_y)),
        min(w, math.ceil(cx + hi_x)),
        min(h, math.ceil(cy + hi_y)),
    )
    pts = None if unit is None else [(cx + x, cy + y) for x, y in unit]
    return box, pts


def _draw_image(
    index: int, seed: int, photos: Sequence["PILImage.Image"], min_side: int, max_side: int
) -> Tuple["PILImage.Image", List[ShapeBox]]:
    np, _, ImageDraw = _require()
    rng = np.random.default_rng([seed, index])
    longer = int(rng.integers(min_side, max_side + 1))
    shorter = max(min_side // 2, int(round(longer * rng.uniform(0.6, 1.0))))
    w, h = (longer, shorter) if rng.random() < 0.65 else (shorter, longer)
    img = _background(rng, w, h, photos)
    draw = ImageDraw.Draw(img)

    target = CLASSES[index % len(CLASSES)]
    n_shapes = int(rng.integers(1, 5))
    # The target dominates: distractors are at most 45% of its size, so the
    # class ("the largest shape's kind") is learnable at small resolutions.
    r0 = float(rng.uniform(0.22, 0.36)) * min(w, h)
    placed: List[Tuple[ShapeBox, Optional[List[Tuple[float, float]]]]] = [_place(rng, target, r0, w, h)]
    for _ in range(n_shapes - 1):
        kind = CLASSES[int(rng.integers(len(CLASSES)))]
        r = r0 * float(rng.uniform(0.2, 0.45))
        box, pts = _place(rng, kind, r, w, h)
        # The target must stay the largest box; shrink until it is.
        while box.area >= 0.9 * placed[0][0].area:
            r *= 0.8
            box, pts = _place(rng, kind, r, w, h)
        placed.append((box, pts))
    for box, pts in placed:
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        outline = tuple(max(0, v - 80) for v in fill)
        if pts is None:
            draw.ellipse([box.x_min, box.y_min, box.x_max - 1, box.y_max - 1], fill=fill, outline=outline, width=2)
        else:
            draw.polygon(pts, fill=fill, outline=outline, width=2)
    return img, [b for b, _ in placed]


def _voc_xml(file_name: str, w: int, h: int, boxes: Sequence[ShapeBox]) -> str:
    objects = "".join(
        f"  <object>\n    <name>{b.kind}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        f"    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{b.x_min + 1}</xmin>\n      <ymin>{b.y_min + 1}</ymin>\n"
        f"      <xmax>{b.x_max}</xmax>\n      <ymax>{b.y_max}</ymax>\n    </bndbox>\n  </object>\n"
        for b in boxes
    )
    return (
        f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{file_name}</filename>\n"
        f"  <size>\n    <width>{w}</width>\n    <height>{h}</height>\n    <depth>3</depth>\n  </size>\n"
        f"{objects}</annotation>\n"
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


_WORKER_PHOTOS: List["PILImage.Image"] = []


def _init_worker() -> None:
    _WORKER_PHOTOS[:] = _load_photos()


def _draw_and_save(
    task: Tuple[Tuple[str, int, int, int, int], int],
) -> Tuple[str, int, int, List[ShapeBox]]:
    """Draws image ``i`` and writes its JPEG, VOC link and VOC XML."""
    (out, seed, min_side, max_side, quality), i = task
    root = Path(out)
    img, boxes = _draw_image(i, seed, _WORKER_PHOTOS, min_side, max_side)
    name = f"{i:05d}.jpg"
    rel = f"images/{boxes[0].kind}/{name}"
    img.save(root / rel, quality=quality)
    _link_or_copy(root / rel, root / "voc" / "JPEGImages" / name)
    w, h = img.size
    (root / "voc" / "Annotations" / f"{i:05d}.xml").write_text(_voc_xml(name, w, h, boxes))
    return rel, w, h, boxes


def make_shapes(
    out: "str | os.PathLike[str]",
    n: int = 2000,
    seed: int = 0,
    *,
    min_side: int = 160,
    max_side: int = 640,
    quality: int = 90,
    force: bool = False,
    workers: int = 1,
) -> Path:
    """Writes the shapes dataset (``n`` images) under ``out`` and returns its path.

    The output is a pure function of ``(n, seed, min_side, max_side,
    quality)`` and the library versions. If ``out`` already holds a complete
    dataset made with the same parameters, nothing is redone unless
    ``force``. ``workers`` > 1 draws in that many spawned processes (same
    output); the caller's main module must then be importable without side
    effects (an ``if __name__ == "__main__":`` guard), as
    :mod:`multiprocessing` requires.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 16 <= min_side <= max_side:
        raise ValueError(f"need 16 <= min_side <= max_side, got {min_side}, {max_side}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _require()  # a missing dependency is named here, not in a worker
    root = Path(out)
    params = {"n": n, "seed": seed, "min_side": min_side, "max_side": max_side, "quality": quality, "version": 3}
    stamp = root / _STAMP
    if not force and stamp.exists() and json.loads(stamp.read_text()) == params:
        return root
    for sub in ("images", "voc"):
        shutil.rmtree(root / sub, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    for kind in CLASSES:
        (root / "images" / kind).mkdir(parents=True, exist_ok=True)
    (root / "voc" / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "voc" / "JPEGImages").mkdir(parents=True, exist_ok=True)

    rows: List[Tuple[str, str, int, int, int, int]] = []
    coco: Dict[str, Any] = {
        "info": {"description": f"stokehold shapes, n={n}, seed={seed}"},
        "images": [],
        "annotations": [],
        "categories": [{"id": k + 1, "name": c, "supercategory": "shape"} for k, c in enumerate(CLASSES)],
    }
    job = (str(root), seed, min_side, max_side, quality)
    if min(workers, n) > 1:
        # Each image is a pure function of (seed, index): processes draw
        # them in any order, and the files and lists come out the same.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Spawned, not forked: the caller may have started threads (jax).
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, n), mp_context=ctx, initializer=_init_worker) as pool:
            chunk = max(1, min(64, n // (4 * workers)))
            drawn = list(pool.map(_draw_and_save, [(job, i) for i in range(n)], chunksize=chunk))
    else:
        _init_worker()
        drawn = [_draw_and_save((job, i)) for i in range(n)]
    for i, (rel, w, h, boxes) in enumerate(drawn):
        coco["images"].append({"id": i + 1, "file_name": rel, "width": w, "height": h})
        for b in boxes:
            rows.append((rel, b.kind, b.x_min, b.y_min, b.x_max, b.y_max))
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": CLASSES.index(b.kind) + 1,
                    "bbox": [b.x_min, b.y_min, b.x_max - b.x_min, b.y_max - b.y_min],
                    "area": b.area,
                    "iscrowd": 0,
                }
            )
    # Grouped by class (then path), so that the CSV's first-appearance class
    # order is the sorted order that the other three sources give.
    rows.sort(key=lambda r: (r[1], r[0]))
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "x_min", "y_min", "x_max", "y_max"])
        writer.writerows(rows)
    (root / "instances.json").write_text(json.dumps(coco))
    stamp.write_text(json.dumps(params))
    return root


def _usable_cores() -> int:
    """The cores this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m stokehold.datasets OUT [--n N] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m stokehold.datasets", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder")
    parser.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-side", type=int, default=160)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--force", action="store_true", help="redo even if OUT is complete")
    parser.add_argument("--workers", type=int, default=_usable_cores(), help="processes drawing (default: usable cores)")
    args = parser.parse_args(argv)
    root = make_shapes(
        args.out, args.n, args.seed, min_side=args.min_side, max_side=args.max_side, quality=args.quality, force=args.force,
        workers=args.workers,
    )
    print(f"{root}: {args.n} images, {len(CLASSES)} classes (folder tree, labels.csv, instances.json, voc/)")


if __name__ == "__main__":
    main()
