"""A plain JAX training loop fed by stokehold, with batches prefetched to the device.

    python examples/jax_loop.py [--data data] [--n 2000] [--size 32] [--epochs 3]

Softmax regression on the shapes dataset, written with jax.grad alone, to
show the data path: Dataset -> numpy -> prefetch_to_device -> jitted step.
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

import stokehold
from stokehold.datasets import make_shapes
from stokehold.jax import prefetch_to_device

p = argparse.ArgumentParser()
p.add_argument("--data", default="data")
p.add_argument("--n", type=int, default=2000)
p.add_argument("--size", type=int, default=32)
p.add_argument("--epochs", type=int, default=3)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
stokehold.pack(shapes / "instances.json", data / f"all-{a.size}.h5", size=a.size, force=True)
ds = stokehold.Dataset(data / f"all-{a.size}.h5", batch_size=64, drop_last=True)
k = len(ds.classes)
d = a.size * a.size * 3
params = {"w": jnp.zeros((d, k)), "b": jnp.zeros(k)}


def loss_fn(params, x, y):
    logits = x.reshape(x.shape[0], -1) @ params["w"] + params["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


@jax.jit
def step(params, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, params, grads), loss


for epoch in range(a.epochs):
    losses = []
    for x, y in prefetch_to_device(ds, size=2):
        params, loss = step(params, x, y)
        losses.append(float(loss))
    print(f"epoch {epoch + 1}: mean loss {sum(losses) / len(losses):.4f} over {len(losses)} batches")
