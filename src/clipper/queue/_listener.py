"""LISTEN for wake-up hints on a dedicated connection, and come back after it is lost.

NOTIFY is only a hint: consumers also poll, and every (re)connect wakes them all, so a gap in
listening delays work by at most one poll interval and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ._deadlines import bounded
from ._hooks import Wakeups

logger = logging.getLogger("clipper.queue")


class Listener:
    def __init__(
        self,
        conninfo: str,
        channel: str,
        cancel_channel: str,
        wakeups: Wakeups,
        *,
        check_interval: float,
        reconnect_max_seconds: float,
        on_error: Callable[[BaseException, str], None],
        connection_kwargs: dict[str, Any],
        deadline_seconds: float,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._cancel_channel = cancel_channel
        self._wakeups = wakeups
        self._check_interval = check_interval
        self._reconnect_max = reconnect_max_seconds
        self._on_error = on_error
        self._connection_kwargs = {**connection_kwargs, "autocommit": True}
        self._deadline = deadline_seconds
        self._task: asyncio.Task[None] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self.alive = False
        self.connected = asyncio.Event()

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._connection is not None:
            await self._connection.close()
        self.alive = False

    async def backend_pid(self) -> int | None:
        """The server process of the listening connection (tests kill it on purpose)."""
        return None if self._connection is None else self._connection.info.backend_pid

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except Exception as exc:
                self.alive = False
                self.connected.clear()
                self._on_error(exc, "listen")
            failures += 1
            await asyncio.sleep(min(self._reconnect_max, 0.05 * 2 ** min(failures, 10)))

    async def _listen(self) -> None:
        self._connection = conn = await bounded(
            psycopg.AsyncConnection.connect(
                self._conninfo, application_name="clipper-queue-listener", **self._connection_kwargs
            ),
            self._deadline,
        )
        async with conn:
            for channel in (self._channel, self._cancel_channel):
                listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
                await bounded(conn.execute(listen), self._deadline)
            self.alive = True
            self.connected.set()
            self._wakeups.notify_all()  # anything published while we were away
            logger.info("listening for queue wake-ups on %s", self._channel)
            while True:
                async for notify in conn.notifies(timeout=self._check_interval):
                    if notify.channel == self._cancel_channel:
                        self._wakeups.cancel(int(notify.payload))
                    else:
                        self._wakeups.notify(notify.payload)
                # No hint for a while: prove the socket is alive (a half-open one never errors,
                # so the check has a deadline of its own).
                await bounded(conn.execute("SELECT 1"), self._deadline)
