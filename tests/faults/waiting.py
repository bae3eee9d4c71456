"""Waiting on conditions with deadlines, for tests that drive real processes (never a fixed
sleep: each wait ends as soon as its condition holds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.05


def poll(probe: Callable[[], T | None], *, timeout: float, message: str) -> T:
    """The first truthy value of `probe()`; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(INTERVAL)


def holds_within(condition: Callable[[], object], *, timeout: float) -> bool:
    """Whether `condition()` becomes true within `timeout` seconds (for checks that are
    collected and reported together instead of failing at the first)."""
    try:
        poll(condition, timeout=timeout, message="")
    except AssertionError:
        return False
    return True
