"""The ``stokehold`` command, as installed by ``pip install stokehold``."""

from __future__ import annotations

import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; ``argv`` defaults to ``sys.argv``. Exits."""
    args = list(sys.argv if argv is None else ["stokehold", *argv])
    args[0] = "stokehold"
    try:
        code = _native.cli_main(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
