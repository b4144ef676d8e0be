"""Progress bars for ``index`` and ``pack``: tqdm when it is installed (a
widget in a notebook, a bar in a terminal), else one self-updating line on
a terminal; nothing when ``progress=False`` or when stderr is not
interactive and ``progress`` was not asked for."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

Callback = Callable[[int, int], None]


def _interactive() -> bool:
    if "ipykernel" in sys.modules:  # a notebook
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Bar:
    """A progress bar fed by ``(done, total)`` calls; a context manager."""

    def __init__(self, what: str, progress: Optional[bool]) -> None:
        self.what = what
        self.enabled = _interactive() if progress is None else bool(progress)
        self._bar: Any = None
        self._last = ""
        self._start = time.monotonic()

    def __enter__(self) -> Optional[Callback]:
        return self.update if self.enabled else None

    def update(self, done: int, total: int) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            if self._bar is None:
                self._bar = tqdm(total=total, desc=self.what, unit="img", leave=False)
            if self._bar.total != total:
                self._bar.reset(total=total)
            self._bar.n = done
            self._bar.refresh()
            return
        rate = done / max(time.monotonic() - self._start, 1e-9)
        line = f"\r{self.what}: {done}/{total} ({rate:.0f}/s)"
        if line != self._last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self._last = line

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._last:
            sys.stderr.write("\r" + " " * len(self._last) + "\r")
            sys.stderr.flush()
