"""A phone-camera corpus: 12-megapixel JPEGs made from scikit-image's photographs.

    python benchmarks/phones.py OUT [--n 24] [--seed 0]

Writes N JPEGs of 4000x3000 (quality 92, about 3 MB each) under
OUT/<photo>/<i>.jpg: a random 4:3 crop of one of the colour photographs in
skimage's data folder (those of benchmarks/photos.py), randomly flipped,
upscaled with LANCZOS, plus fine sensor-like noise (luma and a little
chroma), so that the JPEG holds real high-frequency texture as a phone
photo does rather than the smooth surfaces of an upscaled image, which
would encode to a few hundred kB. Deterministic from the seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from photos import load_photos

WIDTH, HEIGHT = 4000, 3000
QUALITY = 92
# Noise standard deviations on the 0-255 scale. Luma noise of 4 and chroma
# noise of 1.5 give about 3 MB per image at quality 92, like a 12 MP phone
# JPEG; without noise the upscaled photographs encode to about 0.4 MB.
LUMA_SIGMA, CHROMA_SIGMA = 4.0, 1.5
STRIP = 500  # rows of noise made at a time: 24 MB of float32 per strip, not 290 MB per image


def make(out: Path, n: int = 24, seed: int = 0) -> Path:
    """The corpus in `out` (reused when an earlier call made the same one)."""
    stamp = out / ".complete"
    if stamp.exists() and stamp.read_text() == f"{n} {seed} {WIDTH}x{HEIGHT} q{QUALITY}":
        return out
    photos = load_photos()
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    for i in range(n):
        name = names[i % len(names)]
        photo = photos[name]
        pw, ph = photo.size
        cw = min(pw, int(ph * 4 / 3)) * rng.uniform(0.6, 1.0)
        ch = cw * 3 / 4
        x, y = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
        im = photo.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(im).copy()
        for top in range(0, HEIGHT, STRIP):
            rows = pixels[top : top + STRIP]
            noise = rng.standard_normal((rows.shape[0], WIDTH, 1), dtype=np.float32) * LUMA_SIGMA
            noise = noise + rng.standard_normal((rows.shape[0], WIDTH, 3), dtype=np.float32) * CHROMA_SIGMA
            rows[...] = np.clip(rows + noise, 0, 255).astype(np.uint8)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(d / f"{i:05d}.jpg", quality=QUALITY)
    stamp.write_text(f"{n} {seed} {WIDTH}x{HEIGHT} q{QUALITY}")
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    make(Path(a.out), a.n, a.seed)
