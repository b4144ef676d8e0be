"""Train a small CNN with PyTorch on the bundled shapes dataset, fed by stokehold.

    python examples/torch_classifier.py [--data data] [--n 2000] [--size 64] [--epochs 3] [--num-workers 0]

The Dataset gives channels-first float32 batches; ``ds.torch()`` turns them
into tensors without a copy, and works in a DataLoader with worker processes
(each reads a disjoint share).
"""

import argparse
import time
from pathlib import Path

import torch
from torch import nn

import stokehold
from stokehold.datasets import make_shapes

p = argparse.ArgumentParser()
p.add_argument("--data", default="data")
p.add_argument("--n", type=int, default=2000)
p.add_argument("--size", type=int, default=64)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--num-workers", type=int, default=0)
a = p.parse_args()

data = Path(a.data)
shapes = make_shapes(data / "shapes", n=a.n, seed=0)
train_m, val_m = stokehold.index(shapes / "instances.json").split(val=0.2, seed=0)
stokehold.pack(train_m, data / f"train-{a.size}.h5", size=a.size, force=True)
stokehold.pack(val_m, data / f"val-{a.size}.h5", size=a.size, force=True)

common = dict(data_format="channels_first", num_threads=None if a.num_workers == 0 else 1)
train = stokehold.Dataset(data / f"train-{a.size}.h5", batch_size=32, augment={"hflip": 0.5}, **common)
val = stokehold.Dataset(data / f"val-{a.size}.h5", batch_size=64, shuffle=False, **common)
loader = torch.utils.data.DataLoader(train.torch(), batch_size=None, num_workers=a.num_workers)

torch.manual_seed(0)
blocks = []
for c_in, c_out in ((3, 16), (16, 32), (32, 64)):
    blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
model = nn.Sequential(*blocks, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, len(train.classes)))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

for epoch in range(a.epochs):
    model.train()
    start, seen, loss_sum = time.perf_counter(), 0, 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        seen += len(y)
        loss_sum += float(loss.detach()) * len(y)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in val.torch():
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    print(f"epoch {epoch + 1}: loss {loss_sum / seen:.3f}, {seen / (time.perf_counter() - start):.0f} images/s,"
          f" validation accuracy {correct / total:.3f} (chance {1 / len(train.classes):.3f})")
