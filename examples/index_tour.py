"""Index the bundled shapes dataset from all four sources and look at it.

    python examples/index_tour.py data/shapes

(`make demo` generates data/shapes first.)
"""

import sys
import time
from pathlib import Path

import stokehold

root = Path(sys.argv[1] if len(sys.argv) > 1 else "data/shapes")

for source in ["images", "labels.csv", "instances.json", "voc"]:
    start = time.perf_counter()
    manifest = stokehold.index(root / source)
    elapsed = time.perf_counter() - start
    print(f"{source:>15}: {manifest.summary()} ({len(manifest) / elapsed:,.0f} images/s)")

manifest = stokehold.index(root / "instances.json")
print("classes:", dict(zip(manifest.classes, manifest.class_counts())))
sample = manifest[0]
print("first sample:", sample)
for box in sample.boxes:
    print("   ", box)

train, val = manifest.split(val=0.1, seed=0)
print(f"split: {len(train)} train, {len(val)} val")
