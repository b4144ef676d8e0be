"""Real Keras 3 on the jax, torch and tensorflow backends, fed by stokehold.Dataset."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stokehold

SCRIPT = textwrap.dedent(
    """
    import pickle
    import sys
    import numpy as np
    import keras
    import stokehold

    path = sys.argv[1]
    train = stokehold.Dataset(path, batch_size=16, seed=1, outputs=("images", "labels"))
    val = stokehold.Dataset(path, batch_size=16, shuffle=False)
    assert isinstance(train, keras.utils.PyDataset)
    # A pickled copy (spawned worker processes) is the same kind of Dataset, at the same place.
    clone = pickle.loads(pickle.dumps(train))
    assert isinstance(clone, keras.utils.PyDataset) and type(clone) is type(train)
    assert clone.state_dict() == train.state_dict()
    ends = []
    end = train.on_epoch_end
    train.on_epoch_end = lambda: (ends.append(1), end())
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(6, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    # Each on_epoch_end Keras makes moves to the next epoch exactly once
    # (Keras also runs one begin/peek/end cycle before the first epoch).
    assert train.state_dict() == {**train.state_dict(), "epoch": len(ends), "next_batch": 0}, (len(ends), train.state_dict())
    assert len(ends) >= 2
    loss, acc = model.evaluate(val, verbose=0)
    pred = model.predict(val, verbose=0)
    n = val.samples_per_epoch
    assert pred.shape == (n, 6), pred.shape
    # predict rows are in sample order: the same as calling the model batch by batch.
    direct = np.concatenate([keras.ops.convert_to_numpy(model(val.batch(i)[0])) for i in range(len(val))])
    np.testing.assert_allclose(pred, direct, rtol=1e-4, atol=1e-5)
    # The endless generator view, counted in steps.
    gen = stokehold.Dataset(path, batch_size=16)
    model.fit(gen.generator(), steps_per_epoch=5, epochs=2, verbose=0)
    print("ok", keras.backend.backend(), round(float(acc), 3))
    """
)


@pytest.fixture(scope="module")
def packed(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keras") / "shapes32.h5"
    stokehold.pack(shapes / "instances.json", out, size=32)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_fit_evaluate_predict(packed: Path, backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(packed)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().startswith(f"ok {backend}"), out.stdout


KERAS_WORKERS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax
    import keras
    import stokehold

    path, processes = sys.argv[1], sys.argv[2] == "processes"

    def dataset(**kw):
        ds = stokehold.Dataset(path, batch_size=16, seed=3, outputs=("images", "indices"), **kw)
        # Keras's own workers, on top of the loader's: not needed, but they must not break anything.
        ds.workers, ds.use_multiprocessing = 2, processes
        return ds

    train = dataset()
    n = len(train)
    # Every batch of epochs 0..5 by its sample indices, from a separate exact-access Dataset.
    probe = stokehold.Dataset(path, batch_size=16, seed=3, outputs="indices")
    where = {tuple(probe.batch(i, epoch=e)): (e, i) for e in range(6) for i in range(n)}

    seen = []
    def record(y_true, y_pred):  # run eagerly: y_true is concrete, except while Keras traces the model
        if not isinstance(y_true, jax.core.Tracer):
            seen.append(tuple(np.asarray(y_true).astype(np.int64).ravel()))
        return keras.ops.mean(keras.ops.square(y_pred))

    model = keras.Sequential([keras.Input(train.image_shape), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    model.compile("sgd", record, run_eagerly=True)
    epochs = 3
    model.fit(train, epochs=epochs, verbose=0)
    assert len(seen) == epochs * n, (len(seen), n)
    got = [where[b] for b in seen]  # KeyError: a batch that no epoch has
    assert len(set(got)) == len(got), f"a batch came twice: {got}"
    # Keras's enqueuer carries batches it fetched ahead into the next epoch (it
    # does so for any PyDataset), so epoch boundaries shift; the stream still
    # goes through whole epochs in order, each of its batches once.
    assert [e for e, _ in got] == sorted(e for e, _ in got), got
    for e in range(1, epochs):
        assert sorted(i for ee, i in got if ee == e) == list(range(n)), (e, got)

    # predict: rows in sample order, whatever runs the batches.
    val = dataset(shuffle=False)
    pred = model.predict(val, verbose=0)
    direct = np.concatenate([keras.ops.convert_to_numpy(model(probe_x)) for probe_x, _ in
                             stokehold.Dataset(path, batch_size=16, shuffle=False)])
    np.testing.assert_allclose(pred, direct, rtol=1e-4, atol=1e-5)
    print("ok", len(got), sorted(set(e for e, _ in got)))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_keras_workers_do_not_break_it(packed: Path, mode: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run(
        [sys.executable, "-c", KERAS_WORKERS, str(packed), mode], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().startswith("ok"), out.stdout
