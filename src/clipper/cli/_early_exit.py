"""Imported first by the command line, before anything slow to import: from then until a
command's event loop installs its own handlers, SIGTERM exits cleanly (code 0, transactions
rolled back) instead of killing the process mid-start-up."""

from __future__ import annotations

import signal
from types import FrameType


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


signal.signal(signal.SIGTERM, _exit_cleanly)
