"""The benchmark photo corpus: real photographs shipped with scikit-image.

    python benchmarks/photos.py OUT [--n 2000] [--seed 0]

Writes N JPEGs (quality 90) under OUT/<photo>/<i>.jpg: random crops of the
colour photographs in skimage's data folder (astronaut, chelsea, coffee,
rocket, motorcycle, hubble, retina, ihc), randomly flipped and resized so the
longer side is 300-640 px. Deterministic from the seed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png")


def load_photos() -> Dict[str, Image.Image]:
    """The photographs scikit-image ships, as RGB, by name without extension."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return {name.split(".")[0]: Image.open(folder / name).convert("RGB") for name in PHOTOS}


def make(out: Path, n: int = 2000, seed: int = 0) -> Path:
    stamp = out / ".complete"
    if stamp.exists() and stamp.read_text() == f"{n} {seed}":
        return out
    photos = load_photos()
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    for i in range(n):
        name = names[i % len(names)]
        photo = photos[name]
        pw, ph = photo.size
        aspect = rng.uniform(0.6, 1.0)
        cw = int(pw * rng.uniform(0.55, 1.0))
        ch = min(ph, int(cw * aspect)) if rng.random() < 0.6 else min(ph, int(cw / aspect))
        x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
        im = photo.crop((x, y, x + cw, y + ch))
        longer = int(rng.integers(300, 641))
        scale = longer / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        im.save(d / f"{i:05d}.jpg", quality=90)
    stamp.write_text(f"{n} {seed}")
    return out


def indexed_and_packed(out: Path, n: int = 2000) -> Tuple[Path, Path]:
    """The corpus's manifest and its 224x224 raw pack, made with the
    `stokehold` command beside this interpreter (the pack is reused)."""
    corpus = make(out / "photos", n)
    stokehold = str(Path(sys.executable).parent / "stokehold")
    manifest = out / "photos.jsonl"
    packed = out / "loader-224.h5"
    subprocess.run([stokehold, "index", str(corpus), "-o", str(manifest), "-q"], check=True, stdout=subprocess.DEVNULL)
    if not packed.exists():
        subprocess.run([stokehold, "pack", str(manifest), "-o", str(packed), "--size", "224x224", "-q"], check=True,
                       stdout=subprocess.DEVNULL)
    return manifest, packed


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    make(Path(a.out), a.n, a.seed)
