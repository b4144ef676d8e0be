"""The ``stokehold`` command, as installed by ``pip install stokehold``."""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; ``argv`` defaults to ``sys.argv``. Exits.

    Ctrl-C, SIGTERM and SIGHUP stop a running command cleanly (no temporary
    file left behind); the exit status is then 128 + the signal number.
    """
    args = list(sys.argv if argv is None else ["stokehold", *argv])
    args[0] = "stokehold"
    got: List[int] = []

    def stop(signum: int, frame: object) -> None:
        got.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        code = _native.cli_main(args)
    except KeyboardInterrupt:
        # The command has stopped, cleaned up and said so.
        code = 128 + (got[0] if got else signal.SIGINT)
    sys.exit(code)


if __name__ == "__main__":
    main()
