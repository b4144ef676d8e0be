"""Real Keras 3 on the jax and torch backends, fed by stokehold.Dataset."""

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
    import sys
    import numpy as np
    import keras
    import stokehold

    path = sys.argv[1]
    train = stokehold.Dataset(path, batch_size=16, seed=1, outputs=("images", "labels"))
    val = stokehold.Dataset(path, batch_size=16, shuffle=False)
    assert isinstance(train, keras.utils.PyDataset)
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
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fit_evaluate_predict(packed: Path, backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(packed)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().startswith(f"ok {backend}"), out.stdout
