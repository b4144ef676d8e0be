"""Train a fully convolutional Keras model on images of every shape, with aspect-ratio buckets.

    python examples/fcn_buckets.py [--data data] [--n 2000] [--max-size 96] [--buckets 8] [--epochs 8]

The bundled shapes dataset has photos of many aspect ratios (sides from 160
to 640 pixels). Instead of stretching, letterboxing or cropping them all to
one square, it is packed with ``resize="fit"``: each image keeps its aspect
ratio, the longer side at most ``--max-size``. ``Dataset(buckets=...)`` then
makes batches of one shape each, from a few bucket shapes derived from the
data; the ``"masks"`` output marks each image's pixels, so the model pools
over them only, ignoring the padding. The model's input is
``(None, None, 3)``: one compiled graph per bucket shape (a handful).

Prints the buckets, the share of padding against a square letterbox, and the
accuracy from ``evaluate`` and from ``predict`` put back in sample order with
``stokehold.reorder``.
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
p.add_argument("--n", type=int, default=2000)
p.add_argument("--max-size", type=int, default=96)
p.add_argument("--buckets", type=int, default=8)
p.add_argument("--epochs", type=int, default=8)
p.add_argument("--batch-size", type=int, default=32)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
manifest = stokehold.index(shapes / "instances.json")
train_m, val_m = manifest.split(val=0.2, seed=0)
for name, m in (("train", train_m), ("val", val_m)):
    out = data / f"{name}-fit{a.max_size}.h5"
    report = stokehold.pack(m, out, resize="fit", max_size=a.max_size, multiple=8, force=True)
    print(f"packed {name}: {report.num_samples} samples of their own shapes in {report.seconds:.1f}s")

outputs = ({"image": "images", "mask": "masks"}, "labels")
# drop_last: each bucket's last short batch left out of training (another
# batch size would be one more shape to compile); every sample is still
# seen over the epochs, as the order changes.
train = stokehold.Dataset(data / f"train-fit{a.max_size}.h5", a.batch_size, buckets=a.buckets, outputs=outputs,
                          augment={"hflip": 0.5}, drop_last=True)
val = stokehold.Dataset(data / f"val-fit{a.max_size}.h5", 64, buckets=a.buckets, outputs=outputs, shuffle=False)
print(f"buckets (height, width): {train.bucket_shapes}")
masks = [x["mask"] for x, _ in val]
padding = sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks)
sizes = [(s.width, s.height) for s in val_m]
letterbox = 1 - np.mean([min(a.max_size / w, a.max_size / h, 1) ** 2 * w * h / a.max_size**2 for w, h in sizes])
print(f"padding: {padding:.1%} of the batches' pixels with buckets, {letterbox:.1%} letterboxed to"
      f" {a.max_size}x{a.max_size}")

# A fully convolutional classifier: convolutions, then the average of the
# features over each image's own pixels (the mask, pooled as the features).
keras.utils.set_random_seed(0)
image = keras.Input((None, None, 3), name="image")
mask = keras.Input((None, None), name="mask", dtype="uint8")
x, m = image, keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
for filters in (16, 32, 64):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    m = keras.layers.MaxPooling2D()(m)
pooled = keras.ops.sum(x * m, axis=(1, 2)) / keras.ops.maximum(keras.ops.sum(m, axis=(1, 2)), 1.0)
probabilities = keras.layers.Dense(len(train.classes), activation="softmax")(pooled)
model = keras.Model({"image": image, "mask": mask}, probabilities)
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

start = time.perf_counter()
model.fit(train, validation_data=val, epochs=a.epochs, verbose=2)
print(f"fit: {a.epochs} epochs of {len(train)} batches in {time.perf_counter() - start:.1f}s")

loss, accuracy = model.evaluate(val, verbose=0)
rows = model.predict(val, verbose=0)
# Buckets reorder the samples: row k of predict is sample val.indices()[k].
by_sample = stokehold.reorder(rows, val.indices())
labels = np.array([s.label for s in val_m])
predicted_accuracy = float((by_sample.argmax(axis=1) == labels).mean())
print(f"validation accuracy: {accuracy:.3f} (evaluate), {predicted_accuracy:.3f} (predict, reordered to sample order);"
      f" chance is {1 / len(train.classes):.3f}")
