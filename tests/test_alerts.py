"""A failing alert webhook never reveals its URL (the secret is often in its path): not in the
error, not in the dead-letter message's stored last error, not in any log line."""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
import pytest
from psycopg import sql

from clipper.queue import DeadLetter, ErrorInfo, PermanentError, QueueMessage
from clipper.worker.alerts import AlertFailedError, alert_hook
from tests.conftest import QUEUE_SCHEMA
from tests.helpers import wait_for
from tests.queue.conftest import Harness

SECRET = "T0KEN-6c1e0f5a"


class FailingWebhook:
    """A local webhook that fails: /fail/… answers 500, /hang-up/… closes without answering."""

    def __init__(self) -> None:
        received: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                received.append(self.path)
                if self.path.startswith("/hang-up/"):
                    self.close_connection = True
                    return
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.received = received
        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[FailingWebhook]:
    running = FailingWebhook()
    yield running
    running.http.shutdown()
    running.http.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def _letter() -> DeadLetter:
    now = datetime.now(UTC)
    return DeadLetter("clips", uuid.uuid4(), 0, None, 3, ErrorInfo("RuntimeError", "x"), now, now)


def _assert_secret_kept(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    written = "".join(traceback.format_exception(error)) + caplog.text
    assert SECRET not in written
    assert "127.0.0.1:" not in written  # no part of the URL at all


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"/fail/{SECRET}", "the alert webhook answered 500"),
        (
            f"/hang-up/{SECRET}",
            "the alert webhook could not be reached: Server disconnected without sending a "
            "response.",
        ),
    ],
)
async def test_a_failing_webhook_is_reported_without_its_url(
    webhook: FailingWebhook, caplog: pytest.LogCaptureFixture, path: str, message: str
) -> None:
    alert = alert_hook(f"{webhook.base}{path}?token={SECRET}")
    with caplog.at_level(logging.DEBUG), pytest.raises(AlertFailedError) as raised:
        await alert(_letter())
    assert str(raised.value) == message
    assert webhook.received == [f"{path}?token={SECRET}"]  # it was really asked
    _assert_secret_kept(raised.value, caplog)


async def test_an_unreachable_webhook_is_reported_without_its_url(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    alert = alert_hook(f"http://127.0.0.1:{closed_port}/hooks/{SECRET}")
    with caplog.at_level(logging.DEBUG), pytest.raises(AlertFailedError) as raised:
        await alert(_letter())
    assert str(raised.value).startswith("the alert webhook could not be reached: ")
    _assert_secret_kept(raised.value, caplog)


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    harness = Harness(db_url)
    yield harness
    await harness.close()


async def test_the_dead_letter_consumer_stores_and_logs_no_webhook_url(
    harness: Harness,
    webhook: FailingWebhook,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One attempt for the dead letter too: the failed alert is its last error at once.
    adapter = await harness.adapter(max_attempts=1)

    async def fail(message: object, context: object) -> None:
        raise PermanentError("a job that cannot be done")

    def stored_error() -> Any:
        with psycopg.connect(db_url) as conn:
            query = sql.SQL("SELECT last_error FROM {}.messages WHERE queue = 'clips.dlq'")
            row = conn.execute(query.format(sql.Identifier(QUEUE_SCHEMA))).fetchone()
        return row[0] if row else None

    await adapter.publish(QueueMessage(uuid.uuid4()))
    with caplog.at_level(logging.DEBUG):
        adapter.consume(fail)
        adapter.start_dlq_consumer(alert_hook(f"{webhook.base}/fail/{SECRET}"))
        await wait_for(stored_error, message="the failed alert stored")
        # Logged too, maybe just after it is stored (and while INFO is captured).
        await wait_for(
            lambda: "the alert webhook answered 500" in caplog.text, message="the failure logged"
        )
    error = stored_error()
    assert error["message"] == "the alert webhook answered 500"
    assert webhook.received == [f"/fail/{SECRET}"]
    stored = json.dumps(error)  # the traceback included
    assert SECRET not in stored
    assert webhook.base not in stored
    assert SECRET not in caplog.text  # the failure is logged without the URL
    assert webhook.base not in caplog.text
