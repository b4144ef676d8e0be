"""Data-parallel Keras training (jax backend) across processes, each fed its
own share of the dataset by stokehold.

    python examples/keras_data_parallel.py [--processes 2] [--data data] [--epochs 2]

The launcher starts one process per rank on this machine (on a cluster,
start them with your scheduler and give each `--rank`, `--world-size` and
`--coordinator`). Every process:

- joins the job (`keras.distribution.initialize`: JAX's distributed runtime,
  with gloo collectives on the CPU), and trains one replica under
  `keras.distribution.DataParallel`: gradients are averaged across processes;
- reads only its share: `stokehold.Dataset(..., rank=r, world_size=W)`, a
  disjoint part of each epoch's global order, in lockstep with the other
  ranks (equal batch counts), so each step gets one local batch per
  process and Keras assembles the global batch from them.

Prints each rank's samples and, from rank 0, the evaluated accuracy.
"""

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--processes", type=int, default=2, help="launch this many ranks on this machine")
p.add_argument("--rank", type=int, help="(set by the launcher) this process's rank")
p.add_argument("--world-size", type=int)
p.add_argument("--coordinator", help="host:port of rank 0")
p.add_argument("--data", default="data")
p.add_argument("--n", type=int, default=600)
p.add_argument("--size", type=int, default=32)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--batch-size", type=int, default=16, help="per process")
a = p.parse_args()

if a.rank is None:
    # The launcher: prepare the data once, then one process per rank.
    import stokehold
    from stokehold.datasets import make_shapes

    shapes = make_shapes(Path(a.data) / "shapes", n=a.n, seed=0)
    packed = Path(a.data) / f"shards-{a.size}"
    stokehold.pack(shapes / "instances.json", packed, size=a.size, samples_per_shard=200, force=True, progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.argv[0], "--world-size", str(a.processes), "--coordinator", f"127.0.0.1:{port}",
            "--data", a.data, "--size", str(a.size), "--epochs", str(a.epochs), "--batch-size", str(a.batch_size)]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    procs = [subprocess.Popen([sys.executable, *args, "--rank", str(r)], env=env) for r in range(a.processes)]
    sys.exit(max(p.wait() for p in procs))

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
import keras  # noqa: E402

import stokehold  # noqa: E402

keras.distribution.initialize(a.coordinator, a.world_size, a.rank)
# Each process feeds its own share: Keras must not shard the data again.
keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))

packed = Path(a.data) / f"shards-{a.size}"
train = stokehold.Dataset(packed, batch_size=a.batch_size, rank=a.rank, world_size=a.world_size, seed=0, augment={"hflip": 0.5})
print(f"rank {a.rank}/{a.world_size}: {train.samples_per_epoch} samples an epoch in {len(train)} batches of {a.batch_size}", flush=True)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((a.size, a.size, 3))]
    + [layer for f in (16, 32) for layer in (keras.layers.Conv2D(f, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D())]
    + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(train.classes), activation="softmax")]
)
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train, epochs=a.epochs, verbose=0)
print(f"rank {a.rank}: loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}", flush=True)
if a.rank == 0:
    print(f"trained data-parallel on {a.world_size} processes; final accuracy {history.history['accuracy'][-1]:.3f}")
