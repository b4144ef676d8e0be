"""Boxes all the way to a batch: COCO annotations -> letterboxed pack -> padded box tensors.

    python examples/detection_boxes.py [--data data] [--n 2000] [--size 128]

The boxes go through the same letterbox transform as the pixels at pack time,
and arrive in each batch as (B, K, 4) float32 padded with -1, with their
classes and a count per sample.
"""

import argparse
from pathlib import Path

import numpy as np

import stokehold
from stokehold.datasets import make_shapes

p = argparse.ArgumentParser()
p.add_argument("--data", default="data")
p.add_argument("--n", type=int, default=2000)
p.add_argument("--size", type=int, default=128)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
out = data / f"boxes-{a.size}.h5"
report = stokehold.pack(shapes / "instances.json", out, size=a.size, resize="letterbox", fill=114, force=True)
print(f"packed {report.num_samples} samples; {stokehold.inspect(out)['num_boxes']} boxes")

ds = stokehold.Dataset(
    out,
    batch_size=8,
    shuffle=False,
    dtype="uint8",
    outputs=("images", {"boxes": "boxes", "classes": "box_labels", "count": "box_counts"}),
)
images, targets = ds[0]
print("images", images.shape, images.dtype)
print("boxes", targets["boxes"].shape, "classes", targets["classes"].shape, "counts", targets["count"].tolist())
for i in range(len(images)):
    n = targets["count"][i]
    real, padding = targets["boxes"][i, :n], targets["boxes"][i, n:]
    assert (padding == -1).all() and (real >= 0).all() and (real <= a.size).all()
first = targets["boxes"][0, : targets["count"][0]]
print("sample 0 boxes (x_min, y_min, x_max, y_max):")
print(np.round(first, 1))
stokehold.preview(out, data / "boxes-preview.png", n=16)
print(f"wrote {data / 'boxes-preview.png'}")
