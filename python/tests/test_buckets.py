"""Images of every shape: ``resize="fit"`` (packed and just in time) and
aspect-ratio buckets through the Dataset, Keras (jax and torch), torch's
DataLoader and JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import stokehold
from stokehold import InvalidArgumentError

from conftest import SHAPES_N


@pytest.fixture(scope="module")
def fitted(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "fit.h5"
    report = stokehold.pack(shapes / "instances.json", out, resize="fit", max_size=96, multiple=8, progress=False)
    assert report.num_samples == SHAPES_N and report.num_skipped == 0, report.findings
    return out


def _fit(w: int, h: int, max_size: int, multiple: int) -> tuple:
    """The documented fit rule: aspect kept, longer side at most max_size,
    each side to the nearest multiple (at least one, at most max_size's)."""
    scale = min(max_size / max(w, h), 1.0)
    top = max(max_size // multiple, 1) * multiple
    side = lambda v: min(max((max(round(v * scale), 1) + multiple // 2) // multiple, 1) * multiple, top)  # noqa: E731
    return side(w), side(h)


def test_fit_keeps_each_aspect_and_boxes_follow_exactly(shapes: Path, fitted: Path) -> None:
    manifest = stokehold.index(shapes / "instances.json")
    with h5py.File(fitted, "r") as f:
        stored = f["shapes"][:]
        origin = f["source_index"][:]
        boxes, offsets = f["boxes"][:], f["box_offsets"][:]
        assert f.attrs["resize"] == "fit"
    assert len({tuple(s) for s in stored}) > 10, "the samples keep their own shapes"
    assert stokehold.inspect(fitted)["image_shape"] == (None, None, 3)
    for k, (h, w, c) in enumerate(stored):
        sample = manifest[int(origin[k])]
        fw, fh = _fit(sample.width, sample.height, 96, 8)
        assert (h, w, c) == (fh, fw, 3), (k, sample.width, sample.height)
        want = np.array([b.bbox for b in sample.boxes], dtype=np.float64).reshape(-1, 4)
        got = boxes[offsets[k] : offsets[k + 1]]
        # Each box scaled by exactly the sample's own two factors.
        scale = [fw / sample.width, fh / sample.height] * 2
        np.testing.assert_allclose(got, want * scale, atol=1e-3)


def test_just_in_time_fit_gives_the_packed_shapes(shapes: Path, fitted: Path) -> None:
    packed = stokehold.Dataset(fitted, 8, shuffle=False, buckets=6, dtype="uint8", outputs=("masks", "indices"))
    jit = stokehold.Dataset(shapes / "instances.json", 8, shuffle=False, buckets=6, dtype="uint8", resize="fit",
                            max_size=96, multiple=8, normalize=False, outputs=("masks", "indices"), progress=False)
    assert packed.bucket_shapes == jit.bucket_shapes
    assert packed.image_shape == (None, None, 3)
    for (pm, pi), (jm, ji) in zip(packed, jit):
        np.testing.assert_array_equal(pi, ji)
        np.testing.assert_array_equal(pm, jm)


def test_every_sample_once_one_shape_a_batch_exact_len(fitted: Path) -> None:
    ds = stokehold.Dataset(fitted, 8, seed=3, buckets=6, outputs=("images", "masks", "indices"))
    shapes = ds.bucket_shapes
    assert shapes is not None and 2 <= len(shapes) <= 6
    seen = []
    n = 0
    for x, m, i in ds:
        n += 1
        assert x.shape[1:3] in shapes and m.shape == x.shape[:3] and m.dtype == np.uint8
        # Padding is 0 in uint8, the mean (0 after normalizing) here: the mask tells.
        seen.extend(i.tolist())
    assert n == len(ds)
    assert sorted(seen) == list(range(SHAPES_N))
    assert ds.samples_per_epoch == SHAPES_N
    # Another epoch: another order, the same samples.
    again = [int(j) for _, _, i in ds for j in i]
    assert sorted(again) == list(range(SHAPES_N)) and again != seen


def test_drop_last_leaves_each_buckets_short_batch(fitted: Path) -> None:
    ds = stokehold.Dataset(fitted, 8, buckets=6, drop_last=True, outputs="indices")
    got = [len(i) for i in ds]
    assert set(got) == {8} and len(got) == len(ds)


def test_state_dict_resumes_exactly_and_on_other_ranks(fitted: Path) -> None:
    a = stokehold.Dataset(fitted, 8, seed=5, buckets=6, outputs="indices")
    full = [i.tolist() for i in a]
    b = stokehold.Dataset(fitted, 8, seed=5, buckets=6, outputs="indices", epoch=0)
    it = iter(b)
    first = [next(it).tolist() for _ in range(4)]
    state = b.state_dict()
    assert state["position"] == 4
    c = stokehold.Dataset(fitted, 8, seed=5, buckets=6, outputs="indices")
    c.load_state_dict(state)
    assert first + [i.tolist() for i in c] == full
    # Two ranks resumed from one rank's state: the rest exactly once.
    rest = []
    for rank in range(2):
        r = stokehold.Dataset(fitted, 8, seed=5, buckets=6, outputs="indices", rank=rank, world_size=2, shard="drop")
        r.load_state_dict(state)
        rest += [j for i in r for j in i.tolist()]
    done = [j for i in first for j in i]
    left = sorted(set(range(SHAPES_N)) - set(done))
    # "drop" leaves an odd last batch out: what came is a subset, no repeats.
    assert len(rest) == len(set(rest)) and set(rest) <= set(left) and len(left) - len(rest) <= 8
    # A state of another bucket set or batch size is refused.
    other = stokehold.Dataset(fitted, 4, seed=5, buckets=6)
    with pytest.raises(InvalidArgumentError, match="fingerprint"):
        other.load_state_dict(state)


def test_predict_rows_back_in_sample_order(fitted: Path) -> None:
    ds = stokehold.Dataset(fitted, 8, shuffle=False, buckets=6, outputs=("images", "indices"))
    rows = np.concatenate([i for _, i in ds])
    assert not np.array_equal(rows, np.arange(SHAPES_N)), "buckets reorder the rows"
    np.testing.assert_array_equal(ds.indices(), rows)
    fake_predictions = rows * 10.0
    np.testing.assert_array_equal(stokehold.reorder(fake_predictions, ds.indices()), np.arange(SHAPES_N) * 10.0)
    with pytest.raises(InvalidArgumentError, match="sample 0 has no row"):
        stokehold.reorder(fake_predictions[1:], rows[rows != 0])
    with pytest.raises(InvalidArgumentError, match="one index per row"):
        stokehold.reorder(fake_predictions, rows[:-1])


def test_bad_bucket_settings_are_refused(shapes: Path, fitted: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="buckets="):
        stokehold.Dataset(fitted, 8)
    with pytest.raises(InvalidArgumentError, match="masks"):
        stokehold.Dataset(fitted, 8, outputs=("images", "masks"), buckets=None)
    with pytest.raises(InvalidArgumentError, match="buckets"):
        stokehold.Dataset(fitted, 8, buckets=0)
    with pytest.raises(InvalidArgumentError, match="buckets"):
        stokehold.Dataset(fitted, 8, buckets=[(0, 5)])
    with pytest.raises(InvalidArgumentError, match="buckets"):
        stokehold.Dataset(fitted, 8, buckets="many")
    with pytest.raises(InvalidArgumentError, match="random_resized_crop"):
        stokehold.Dataset(fitted, 8, buckets=4, augment={"random_resized_crop": True})
    with pytest.raises(InvalidArgumentError, match="max_size"):
        stokehold.Dataset(fitted, 8, buckets=4, max_size=64)
    with pytest.raises(InvalidArgumentError, match="max_size"):
        stokehold.Dataset(shapes / "instances.json", 8, resize="fit", size=64, normalize=False, progress=False)


FCN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import stokehold

    path = sys.argv[1]
    train = stokehold.Dataset(path, batch_size=8, buckets=4, seed=1)
    val = stokehold.Dataset(path, batch_size=8, buckets=4, shuffle=False)
    assert train.image_shape == (None, None, 3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(6, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    model.evaluate(val, verbose=0)
    pred = model.predict(val, verbose=0)
    assert pred.shape == (val.samples_per_epoch, 6)
    ordered = stokehold.reorder(pred, val.indices())
    # Row k is sample k: the same as the model on that sample alone, fitted into its bucket.
    for b in range(len(val)):
        x, _ = val.batch(b)
        idx = stokehold.Dataset(path, batch_size=8, buckets=4, shuffle=False, outputs="indices").batch(b)
        direct = keras.ops.convert_to_numpy(model(x))
        np.testing.assert_allclose(ordered[idx], direct, rtol=1e-4, atol=1e-5)
    print("ok", keras.backend.backend(), len(val.bucket_shapes))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_fit_evaluate_predict_with_any_shape(fitted: Path, backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", FCN, str(fitted)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().startswith(f"ok {backend}"), out.stdout


TORCH_AND_JAX = textwrap.dedent(
    """
    import sys
    import jax.numpy as jnp
    import torch
    import stokehold

    path, n = sys.argv[1], int(sys.argv[2])
    ds = stokehold.Dataset(path, 8, buckets=4, outputs=("images", "masks", "indices"))
    loader = torch.utils.data.DataLoader(ds.torch(), batch_size=None, num_workers=2)
    seen = []
    for x, m, i in loader:
        assert isinstance(x, torch.Tensor) and x.shape[:3] == m.shape
        seen += i.tolist()
    # Two workers are two ranks: shard="pad" tops up the last step with one
    # batch from the start of the epoch's list.
    assert set(seen) == set(range(n)) and len(seen) - n <= 8, (len(seen), n)
    shapes = set()
    for x, m, _ in stokehold.Dataset(path, 8, buckets=4, outputs=("images", "masks", "indices")):
        y = jnp.asarray(x) * jnp.asarray(m)[..., None]
        shapes.add(y.shape[1:3])
    assert shapes == set(ds.bucket_shapes), shapes
    print("ok")
    """
)


def test_torch_dataloader_and_jax(fitted: Path) -> None:
    """In a child process: JAX warns on every later fork of a process it was imported into."""
    out = subprocess.run(
        [sys.executable, "-c", TORCH_AND_JAX, str(fitted), str(SHAPES_N)], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
