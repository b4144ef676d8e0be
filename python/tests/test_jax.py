"""JAX: numpy batches and prefetching to the device.

Run in a child process: JAX warns on every later os.fork() of a process it
was imported into, and other tests fork.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stokehold

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    import stokehold
    from stokehold.jax import prefetch_to_device

    path = sys.argv[1]
    expected = [(x.copy(), y.copy()) for x, y in stokehold.Dataset(path, batch_size=32, shuffle=False)]
    got = list(prefetch_to_device(stokehold.Dataset(path, batch_size=32, shuffle=False), size=2))
    assert len(got) == len(expected)
    for (gx, gy), (ex, ey) in zip(got, expected):
        assert isinstance(gx, jax.Array)
        np.testing.assert_array_equal(np.asarray(gx), ex)
        np.testing.assert_array_equal(np.asarray(gy), ey)
    # A batch starts on a 64-byte boundary, so JAX on the CPU uses it as it is.
    x, _ = stokehold.Dataset(path, batch_size=32, shuffle=False, dtype="uint8", normalize=False)[1]
    assert jax.device_put(x).unsafe_buffer_pointer() == x.ctypes.data, "jax copied the batch"
    try:
        next(prefetch_to_device([], size=0))
    except ValueError:
        print("ok")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_prefetch_to_device_yields_the_same_batches(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    stokehold.pack(shapes / "instances.json", out, size=16)
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
