"""Train a small CNN with Keras 3 on the bundled shapes dataset, fed by stokehold.

    python examples/keras_classifier.py [--data data] [--n 6000] [--size 40] [--epochs 10]

index -> split -> pack -> model.fit / evaluate / predict. Uses the jax
backend unless KERAS_BACKEND says otherwise. Prints the loader's images/s,
the step time and the accuracy (chance is 1/6).

The class is the kind of the largest of up to four shapes on a photo
background. With the defaults (4,800 training images at 40x40, batches of 16,
10 epochs, a five-convolution network with a cosine learning-rate schedule)
it reaches about 0.9 validation accuracy in about 95 s of training on 2 CPU
cores; fewer steps than that (fewer epochs or bigger batches) learn much less.
Drawing the 6,000 images takes about 30 s here (one process); `make demo`
draws them first with `python -m stokehold.datasets data/shapes --n 6000`,
one process per core, and this script then reuses them.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import stokehold  # noqa: E402
from stokehold.datasets import make_shapes  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", default="data")
p.add_argument("--n", type=int, default=6000)
p.add_argument("--size", type=int, default=40)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--batch-size", type=int, default=16)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
manifest = stokehold.index(shapes / "instances.json")
train_m, val_m = manifest.split(val=0.2, seed=0)
for name, m in (("train", train_m), ("val", val_m)):
    report = stokehold.pack(m, data / f"{name}-{a.size}.h5", size=a.size, force=True)
    print(f"packed {name}: {report.num_samples} samples in {report.seconds:.1f}s")

train = stokehold.Dataset(data / f"train-{a.size}.h5", batch_size=a.batch_size, augment={"hflip": 0.5})
val = stokehold.Dataset(data / f"val-{a.size}.h5", batch_size=256, shuffle=False)

# How fast the loader alone serves an epoch of normalized float32 batches.
start = time.perf_counter()
n = sum(len(y) for _, y in stokehold.Dataset(data / f"train-{a.size}.h5", batch_size=a.batch_size))
print(f"loader alone: {n / (time.perf_counter() - start):,.0f} images/s")

keras.utils.set_random_seed(0)
L = keras.layers


def conv(filters: int) -> list:
    return [L.Conv2D(filters, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU()]


model = keras.Sequential(
    [keras.Input((a.size, a.size, 3))]
    + conv(24) + [L.MaxPooling2D()]
    + conv(48) + [L.MaxPooling2D()]
    + conv(96) + conv(96) + [L.MaxPooling2D()]
    + [L.GlobalMaxPooling2D(), L.Dropout(0.2), L.Dense(len(train.classes), activation="softmax")]
)
steps = a.epochs * len(train)
# One epoch of warm-up to 3e-3, then a cosine decay. Keras counts decay_steps
# from the end of the warm-up, so training stops 90% of the way down (near 1e-4).
schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, alpha=0.01, warmup_target=3e-3, warmup_steps=len(train))
model.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.perf_counter()
history = model.fit(train, validation_data=val, epochs=a.epochs, verbose=2)
elapsed = time.perf_counter() - start
print(f"fit: {steps} steps in {elapsed:.1f}s ({1000 * elapsed / steps:.1f} ms/step,"
      f" {steps * a.batch_size / elapsed:,.0f} images/s including validation)")

loss, accuracy = model.evaluate(val, verbose=0)
probabilities = model.predict(val, verbose=0)
labels = np.concatenate([y for _, y in val])
predicted_accuracy = float((probabilities.argmax(axis=1) == labels).mean())
print(f"validation accuracy: {accuracy:.3f} (evaluate), {predicted_accuracy:.3f} (predict, rows in sample order);"
      f" chance is {1 / len(train.classes):.3f}")
stokehold.preview(data / f"train-{a.size}.h5", "preview.png", n=36)
print("wrote preview.png")
