"""Waiting on conditions with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


async def wait_for(
    condition: Callable[[], object],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> None:
    """Return as soon as `condition()` is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result  # an async predicate
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


async def wait_event(event: asyncio.Event, timeout: float = 10.0, what: str = "event") -> None:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def wait_until(
    condition: Callable[[], object], *, timeout: float = 30.0, message: str = "condition"
) -> None:
    """wait_for for synchronous tests (driving subprocesses): true in time, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.05)
