"""SIGINT/SIGTERM for long-running commands: the first asks for a graceful stop, the second
for an immediate one."""

from __future__ import annotations

import asyncio
import signal


class StopSignals:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hard_stop = asyncio.Event()

    def install(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)
        return self

    def _on_signal(self) -> None:
        (self.hard_stop if self.stop.is_set() else self.stop).set()
