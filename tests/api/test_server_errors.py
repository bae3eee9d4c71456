"""An unexpected exception is a 500 in the error envelope, and the line that logs it carries the
correlation id the client was given, so one can be found from the other."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.api import create_app
from clipper.logs import JsonFormatter
from tests.api.conftest import settings_for


class JsonLines(logging.Handler):
    """Log records as the service writes them (JSON lines), parsed back."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
async def failing_client(db_url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API with one more route, which fails as a bug would."""
    app = create_app(settings_for(data_dir=data_dir), db_url)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            # The exception is re-raised after the 500 is sent, for the server to see.
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://api",
        ) as client,
    ):
        yield client


@pytest.fixture
def logs() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("clipper.api")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("offered", [None, "req-42"])
async def test_the_500_log_line_carries_the_correlation_id_of_the_response(
    failing_client: httpx.AsyncClient, logs: JsonLines, offered: str | None
) -> None:
    headers = {"X-Request-Id": offered} if offered else {}
    response = await failing_client.get("/broken", headers=headers)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "INTERNAL"
    assert "a bug" not in response.text  # the cause stays in the log
    correlation_id = error["correlationId"]
    assert correlation_id == response.headers["x-request-id"]
    assert correlation_id == (offered or correlation_id)
    [line] = [line for line in logs.lines if line["level"] == "error"]
    assert line["correlation_id"] == correlation_id
    assert "RuntimeError: a bug" in line["exception"]
