"""Fixtures of the console's browser tests: a real `clipper up` and a headless chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.browser.harness import Console, Server, chrome, clipper_up, require_chromium

StartServer = Callable[..., Server]
MakeConsole = Callable[[Server], Console]


@pytest.fixture
def start_server(db_url: str, tmp_path: Path) -> Iterator[StartServer]:
    """start_server(**env) -> `clipper up` on this test's database, stopped at the end."""
    with ExitStack() as stack:

        def start(**env: str) -> Server:
            return stack.enter_context(clipper_up(db_url, tmp_path / "data", **env))

        yield start


@pytest.fixture
def make_console(tmp_path: Path) -> Iterator[MakeConsole]:
    """make_console(server) -> a fresh browser on it. At the end, any error the browser
    logged (and the test did not expect) fails the test."""
    require_chromium()
    opened: list[Console] = []

    def make(server: Server) -> Console:
        downloads = tmp_path / f"downloads-{len(opened)}"
        downloads.mkdir()
        console = Console(chrome(downloads), server, downloads)
        opened.append(console)
        return console

    yield make
    try:
        for console in opened:
            console.assert_no_console_errors()
    finally:
        for console in opened:
            console.driver.quit()
