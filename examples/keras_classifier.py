"""Train a small CNN with Keras 3 on the bundled shapes dataset, fed by stokehold.

    python examples/keras_classifier.py [--data data] [--n 2000] [--size 64] [--epochs 6]

index -> split -> pack -> model.fit / evaluate / predict. Uses the jax
backend unless KERAS_BACKEND says otherwise. Prints the loader's images/s,
the step time and the accuracy (chance is 1/6).
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
p.add_argument("--size", type=int, default=64)
p.add_argument("--epochs", type=int, default=12)
p.add_argument("--batch-size", type=int, default=32)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
manifest = stokehold.index(shapes / "instances.json")
train_m, val_m = manifest.split(val=0.2, seed=0)
for name, m in (("train", train_m), ("val", val_m)):
    report = stokehold.pack(m, data / f"{name}-{a.size}.h5", size=a.size, force=True)
    print(f"packed {name}: {report.num_samples} samples in {report.seconds:.1f}s")

train = stokehold.Dataset(data / f"train-{a.size}.h5", batch_size=a.batch_size, augment={"hflip": 0.5})
val = stokehold.Dataset(data / f"val-{a.size}.h5", batch_size=64, shuffle=False)

# How fast the loader alone serves an epoch of normalized float32 batches.
start = time.perf_counter()
n = sum(len(y) for _, y in stokehold.Dataset(data / f"train-{a.size}.h5", batch_size=a.batch_size))
print(f"loader alone: {n / (time.perf_counter() - start):,.0f} images/s")

keras.utils.set_random_seed(0)
layers = [keras.Input((a.size, a.size, 3))]
for filters in (16, 32, 64):
    layers += [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
    ]
layers += [keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(len(train.classes), activation="softmax")]
model = keras.Sequential(layers)
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.perf_counter()
history = model.fit(train, validation_data=val, epochs=a.epochs, verbose=2)
elapsed = time.perf_counter() - start
steps = a.epochs * len(train)
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
