"""JSON log lines carry the job id of the running handler and never a secret."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from clipper.logs import JsonFormatter, redact
from clipper.queue import JobContext, QueueAdapter, QueueMessage, ReceivedMessage
from tests.helpers import wait_for
from tests.queue.conftest import fast_config


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgresql://app:hunter2@db:5432/x failed", "hunter2"),
        ("postgresql+psycopg://u:p%40ss@h/d", "p%40ss"),
        ("password=hunter2 host=db", "hunter2"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("key ck_12ab_s3cr3tvalue used", "s3cr3tvalue"),
        ("GET /files/results/x/clip.mp4?expires=1&signature=AbC123_-x", "AbC123_-x"),
    ],
)
def test_redact_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)


async def test_handler_log_lines_carry_the_job_id(db_url: str) -> None:
    formatter = JsonFormatter()
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    logger = logging.getLogger("clipper.test.handler")
    logger.addHandler(capture := Capture())
    logger.setLevel(logging.INFO)
    job = uuid.uuid4()

    async def handler(message: ReceivedMessage, context: JobContext) -> None:
        logger.info("cutting with password=hunter2", extra={"stage": "cut"})

    adapter = QueueAdapter(db_url, fast_config())
    await adapter.start()
    try:
        await adapter.publish(QueueMessage(job))
        adapter.consume(handler)
        await wait_for(lambda: lines, message="a log line")
    finally:
        await adapter.shutdown()
        logger.removeHandler(capture)
    entry = json.loads(lines[0])
    assert entry["job_id"] == str(job)
    assert entry["stage"] == "cut"
    assert entry["level"] == "info"
    assert "hunter2" not in lines[0]
