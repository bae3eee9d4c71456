"""The database goes away under load: 503 in the error envelope (never a 500 with a
traceback), nothing half-written, and service resumes when it is back."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from clipper.api import create_app
from clipper.logs import JsonFormatter
from tests.api.conftest import clip, settings_for
from tests.conftest import PrivatePostgres


class JsonLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_api_answers_503_while_the_database_is_down_and_leaves_nothing_half_written(
    private_postgres: PrivatePostgres, data_dir: Path
) -> None:
    url = private_postgres.url
    app = create_app(settings_for(data_dir=data_dir), url)
    logs = JsonLines()
    logging.getLogger("clipper.api").addHandler(logs)
    statuses: list[int] = []
    accepted: list[str] = []
    refused: list[httpx.Response] = []
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://api",
            ) as client,
        ):

            async def post(index: int) -> None:
                response = await client.post(
                    "/api/jobs", json=clip(), headers={"X-Request-Id": f"load-{index}"}
                )
                statuses.append(response.status_code)
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                else:
                    refused.append(response)

            for wave in range(12):
                if wave == 4:
                    await asyncio.to_thread(private_postgres.stop)  # mid-load
                if wave == 8:
                    await asyncio.to_thread(private_postgres.start)
                await asyncio.gather(*(post(wave * 10 + n) for n in range(10)))
            after = await client.post("/api/jobs", json=clip())
            assert after.status_code == 202, after.text  # recovered without a restart
            accepted.append(after.json()["id"])
    finally:
        logging.getLogger("clipper.api").removeHandler(logs)
    assert set(statuses) <= {202, 503}, statuses
    assert statuses.count(503) >= 10  # at least the whole wave sent while it was down
    assert statuses.count(202) >= 40
    for response in refused:
        error = response.json()["error"]
        assert error["code"] == "UNAVAILABLE"
        assert error["correlationId"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text
    logged = {
        line.get("correlation_id")
        for line in logs.lines
        if line["message"].startswith("database unavailable")
    }
    assert {r.headers["x-request-id"] for r in refused} <= logged

    with psycopg.connect(url) as conn:
        jobs = {str(row[0]) for row in conn.execute("SELECT id FROM jobs").fetchall()}
        without_event = conn.execute(
            "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM job_events e "
            "WHERE e.job_id = j.id AND e.type = 'created')"
        ).fetchone()
        without_message = conn.execute(
            "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM "
            "clipper_queue.messages m WHERE m.job_id = j.id)"
        ).fetchone()
        orphan_messages = conn.execute(
            "SELECT count(*) FROM clipper_queue.messages m WHERE NOT EXISTS "
            "(SELECT 1 FROM jobs j WHERE j.id = m.job_id)"
        ).fetchone()
    assert set(accepted) <= jobs  # every 202 was committed
    assert (without_event, without_message, orphan_messages) == ((0,), (0,), (0,))


@pytest.fixture(autouse=True)
def _quiet_pool_warnings() -> None:
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
