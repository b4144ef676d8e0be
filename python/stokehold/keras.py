"""Keras adapter: a :class:`stokehold.Dataset` is a ``keras.utils.PyDataset``.

Made when a Dataset is created and Keras can be imported (never at import
time of ``stokehold``). Keras's own ``workers`` / ``use_multiprocessing`` /
``max_queue_size`` attributes stay Keras's: they default to 1 / False, since
the Dataset's Rust threads already run ahead (set them on the Dataset and
they still work: worker processes get copies that return exactly the batch
Keras asks for). The thread count of the Dataset is ``num_threads``.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["keras_dataset_class"]

_CLASS: Optional[type] = None


def keras_dataset_class() -> type:
    """Dataset as a ``keras.utils.PyDataset`` subclass, or plain Dataset when
    Keras cannot be imported (e.g. its configured backend is not installed)."""
    global _CLASS
    from .dataset import Dataset

    if _CLASS is None:
        try:
            import keras
        except Exception:  # noqa: BLE001 - any failure of Keras's own import
            _CLASS = Dataset
            return Dataset

        class KerasDataset(Dataset, keras.utils.PyDataset):  # type: ignore[misc]
            """A stokehold Dataset that Keras recognises as a PyDataset."""

            def _framework_init(self) -> None:
                # Keras's own workers are not needed: the loader runs ahead.
                keras.utils.PyDataset.__init__(self, workers=1, use_multiprocessing=False)

            @property
            def num_batches(self) -> int:
                return len(self)

        KerasDataset.__name__ = "Dataset"
        KerasDataset.__qualname__ = "Dataset"
        _CLASS = KerasDataset
    return _CLASS
