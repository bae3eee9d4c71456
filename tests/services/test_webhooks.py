"""Completion webhooks end to end: a real worker (the clips consumer and the webhooks one) on
real PostgreSQL, POSTing to a real HTTP receiver on 127.0.0.1 (allowed by ALLOWLIST_HOSTS,
as URL sources are in their tests). Signatures are checked by a verifier written here from
the Standard Webhooks specification, not by Clipper's own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clipper.api_keys import make_key
from clipper.db.models import Job
from clipper.db.repositories import ApiKeyRepository, JobRepository
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import SourceType
from clipper.domain.subtitles import SubtitlesMade, SubtitleSource
from clipper.domain.tenancy import OPERATOR, Scope
from clipper.domain.timecode import format_timecode
from clipper.queue import JobContext, QueueAdapter
from clipper.services.cancel import cancel_job
from clipper.services.jobs import create_job
from clipper.services.processing import ClipResult, Processor, Progress
from clipper.services.webhooks import WEBHOOK_MAX_ATTEMPTS, webhook_secret
from clipper.signals import StopSignals
from clipper.worker.service import Worker, WorkerOptions
from tests.api.conftest import settings_for
from tests.helpers import wait_for
from tests.queue.conftest import fast_config

SIGNING_KEY = "a-signing-key-of-the-tests"
KEEP = timedelta(hours=1)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with the next of
    `answers` (status, headers), then 204."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def answer(self) -> tuple[int, dict[str, str]]:
        return self.answers.pop(0) if self.answers else (204, {})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.received.append(Received(self.path, headers, body, time.monotonic()))
            status, extra = state.answer()
            self.send_response(status)
            for name, value in {"Content-Length": "0", **extra}.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def standard_webhooks_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """The Standard Webhooks check: the base64 key after `whsec_` signs
    "{webhook-id}.{webhook-timestamp}.{body}" with HMAC-SHA256; the header lists
    space-separated `v1,<base64>` signatures, any of which may match."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(expected, signature)
        for version, _, signature in (
            candidate.partition(",") for candidate in headers["webhook-signature"].split(" ")
        )
    )


def expected_secret(key_id: str, version: int) -> str:
    """The derivation the secret is specified by, written out independently."""
    message = f"clipper-webhook:{key_id}:{version}".encode()
    digest = hmac.new(SIGNING_KEY.encode(), message, hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


HEARD = SubtitlesMade(SubtitleSource.SPEECH, 2, language="en", model="tiny.en")


async def cut(job: Job, progress: Progress, context: JobContext) -> ClipResult:
    return ClipResult(f"results/{job.id}/clip.mp4", start_ms=job.start_ms - 250, subtitles=HEARD)


StartWorker = Callable[..., Awaitable[QueueAdapter]]


@pytest.fixture
async def start_worker(db_url: str, tmp_path: Path) -> AsyncIterator[StartWorker]:
    """start_worker(processors, allowlist=..., **queue_config) -> its started queue adapter:
    a Worker with the clips and webhooks consumers, on a queue with short timings."""
    running: list[tuple[Worker, QueueAdapter]] = []

    async def start(
        processors: dict[str, Processor], allowlist: str = "127.0.0.1", **config: Any
    ) -> QueueAdapter:
        queue = QueueAdapter(db_url, fast_config(**config))
        await queue.start()
        settings = settings_for(
            data_dir=tmp_path / "data", signing_key=SIGNING_KEY, allowlist_hosts=allowlist
        )
        options = WorkerOptions(metrics_port=0, dead_letter_consumer=False, processors=processors)
        worker = Worker(settings, db_url, options, queue=queue)
        await worker.start()
        running.append((worker, queue))
        return queue

    yield start
    for worker, queue in running:
        await worker.stop(StopSignals())
        await queue.shutdown(grace_seconds=0)


@pytest.fixture
async def publisher(db_url: str) -> AsyncIterator[QueueAdapter]:
    """A queue adapter for creating jobs before any worker runs."""
    queue = QueueAdapter(db_url, fast_config())
    await queue.start()
    yield queue
    await queue.shutdown(grace_seconds=0)


async def create(
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    callback_url: str | None,
    scope: Scope = OPERATOR,
) -> Job:
    request = ClipRequest(
        SourceType.UPLOAD, 0, 10_000, upload_key="up_1", callback_url=callback_url
    )
    async with sessions.begin() as session:
        return (await create_job(session, queue, request, scope)).job


async def rows(db_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        return await (await conn.execute(query, params)).fetchall()


async def webhook_messages(db_url: str, queue: str = "webhooks") -> list[tuple[Any, ...]]:
    """(job_id, state, attempts) of each message of `queue`."""
    return await rows(
        db_url,
        "SELECT job_id, state, attempts FROM clipper_queue.messages WHERE queue = %s",
        queue,
    )


async def last_error(db_url: str, webhook: uuid.UUID) -> str:
    [(error,)] = await rows(
        db_url,
        "SELECT last_error::text FROM clipper_queue.messages"
        " WHERE queue = 'webhooks' AND job_id = %s",
        webhook,
    )
    return str(error)


@pytest.mark.parametrize("ending", ["done", "failed", "cancelled"])
async def test_a_job_that_ends_posts_its_status_signed_with_its_keys_secret(
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
    receiver: Receiver,
    ending: str,
) -> None:
    job = await create(sessions, publisher, f"{receiver.base}/hooks/clips")
    if ending == "cancelled":  # before any worker: it never runs
        async with sessions.begin() as session:
            await cancel_job(session, publisher, job.id, OPERATOR, KEEP)
    # No processor for uploads: the job fails at once (NO_PROCESSOR).
    await start_worker({} if ending == "failed" else {"upload": cut})
    await wait_for(lambda: receiver.received, message="the webhook")
    sent = receiver.received[0]
    assert sent.path == "/hooks/clips"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["webhook-id"] == str(uuid.uuid5(job.id, ending))
    assert abs(int(sent.headers["webhook-timestamp"]) - time.time()) < 60
    # With API keys off, jobs belong to the key id "local", whose secret is version 1.
    secret = webhook_secret(SIGNING_KEY.encode(), "local", 1)
    assert secret == expected_secret("local", 1)
    assert standard_webhooks_valid(secret, sent.headers, sent.body)
    assert not standard_webhooks_valid(secret, sent.headers, sent.body + b" ")
    assert not standard_webhooks_valid(expected_secret("local", 2), sent.headers, sent.body)
    event = json.loads(sent.body)
    assert event["type"] == f"job.{ending}"
    assert event["data"]["jobId"] == str(job.id)
    assert event["data"]["status"] == ending
    links = {"self": f"/api/jobs/{job.id}", "events": f"/api/jobs/{job.id}/events"}
    if ending == "done":
        links["result"] = f"/api/jobs/{job.id}/result"
    assert event["data"]["links"] == links
    assert event["data"]["cut"] == "exact"
    # Where the clip starts in the source, once there is a clip (the processor's word).
    started = format_timecode(job.start_ms - 250) if ending == "done" else None
    assert event["data"]["actualStart"] == started
    # Where its subtitles came from, spelled as GET /api/jobs/{id} spells it.
    heard = {"source": "speech", "cues": 2, "language": "en", "model": "tiny.en", "note": None}
    assert event["data"]["subtitles"] == (heard if ending == "done" else None)
    error = event["data"]["error"]
    assert (error or {}).get("code") == ("NO_PROCESSOR" if ending == "failed" else None)
    assert "results/" not in sent.body.decode()  # no storage keys or server paths


async def test_the_keys_default_url_and_secret_version_are_used(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
    receiver: Receiver,
) -> None:
    key = make_key()
    async with sessions.begin() as session:
        await ApiKeyRepository(session).add(key.id, "hooked", key.secret_hash, False)
    await rows(
        db_url,
        "UPDATE api_keys SET callback_url = %s, webhook_secret_version = 2 WHERE id = %s"
        " RETURNING id",
        f"{receiver.base}/key-default",
        key.id,
    )
    job = await create(sessions, publisher, None, Scope(key.id))
    await start_worker({"upload": cut})
    await wait_for(lambda: receiver.received, message="the webhook")
    sent = receiver.received[0]
    assert sent.path == "/key-default"
    assert json.loads(sent.body)["data"]["jobId"] == str(job.id)
    assert standard_webhooks_valid(expected_secret(key.id, 2), sent.headers, sent.body)
    assert not standard_webhooks_valid(expected_secret(key.id, 1), sent.headers, sent.body)


async def test_a_job_without_a_callback_url_publishes_no_webhook(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
) -> None:
    job = await create(sessions, publisher, None)
    await start_worker({"upload": cut})

    async def done() -> bool:
        async with sessions() as session:
            found = await JobRepository(session).get(job.id)
        return found is not None and found.status == "done"

    await wait_for(done, message="done")
    # Published in the transaction that ended the job: it would be there by now.
    assert await webhook_messages(db_url) == []


async def test_a_failed_delivery_is_retried_with_backoff_under_the_same_id(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
    receiver: Receiver,
) -> None:
    # A 500, then a redirect (never followed: it counts as a failure), then taken.
    receiver.answers = [(500, {}), (307, {"Location": f"{receiver.base}/elsewhere"})]
    job = await create(sessions, publisher, f"{receiver.base}/hook")
    await start_worker({"upload": cut}, backoff_base_ms=200, backoff_max_ms=400)
    await wait_for(lambda: len(receiver.received) == 3, message="three attempts")
    await wait_for(
        lambda: _states_are(db_url, [(uuid.uuid5(job.id, "done"), "completed", 3)]),
        message="the webhook delivered",
    )
    assert [sent.path for sent in receiver.received] == ["/hook"] * 3
    ids = {sent.headers["webhook-id"] for sent in receiver.received}
    assert ids == {str(uuid.uuid5(job.id, "done"))}
    first, second, third = (sent.at for sent in receiver.received)
    assert second - first >= 0.2  # the backoff doubles: 200 ms, then 400 ms (no jitter)
    assert third - second >= 0.4
    secret = expected_secret("local", 1)
    assert all(standard_webhooks_valid(secret, s.headers, s.body) for s in receiver.received)
    assert len({sent.body for sent in receiver.received}) == 1  # the same bytes each time


async def _states_are(db_url: str, expected: list[tuple[uuid.UUID, str, int]]) -> bool:
    return await webhook_messages(db_url) == expected


async def test_after_its_attempts_a_webhook_is_dead_lettered_and_nothing_leaks_its_url(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path_secret = secrets.token_hex(16)  # a receiver's own secret, in its URL's path
    callback = f"{receiver.base}/hooks/{path_secret}"
    receiver.answers = [(500, {})] * (WEBHOOK_MAX_ATTEMPTS + 1)
    job = await create(sessions, publisher, callback)
    await start_worker({"upload": cut}, backoff_base_ms=10, backoff_max_ms=20)
    webhook = uuid.uuid5(job.id, "done")
    await wait_for(
        lambda: _states_are(db_url, [(webhook, "failed", WEBHOOK_MAX_ATTEMPTS)]),
        message="the webhook dead-lettered",
    )
    assert [
        (job_id, state) for job_id, state, _ in await webhook_messages(db_url, "webhooks.dlq")
    ] == [(webhook, "ready")]
    assert len(receiver.received) == WEBHOOK_MAX_ATTEMPTS
    assert {sent.headers["webhook-id"] for sent in receiver.received} == {str(webhook)}
    error = await last_error(db_url, webhook)
    assert "the callback URL answered HTTP 500" in error

    secret = webhook_secret(SIGNING_KEY.encode(), "local", 1)
    leaks = (path_secret, secret, secret.removeprefix("whsec_"))
    logged = [
        " ".join([record.getMessage(), *map(str, vars(record).values())])
        for record in caplog.records
    ]
    assert any("attempt failed" in line for line in logged)  # the failures were logged
    stored = [
        text
        for (text,) in await rows(db_url, "SELECT m::text FROM clipper_queue.messages m")
        + await rows(
            db_url, "SELECT concat(last_error, error_message) FROM jobs WHERE id = %s", job.id
        )
    ]
    for leak in leaks:
        assert not any(leak in line for line in logged), "a log record names it"
        assert not any(leak in text for text in stored), "a stored record names it"


async def test_the_ssrf_guard_is_checked_again_at_delivery(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    publisher: QueueAdapter,
    start_worker: StartWorker,
    receiver: Receiver,
) -> None:
    # Accepted when the job was made, refused now: this worker has no ALLOWLIST_HOSTS, so
    # the loopback receiver is out of bounds.
    job = await create(sessions, publisher, f"{receiver.base}/hook")
    await start_worker({"upload": cut}, allowlist="", backoff_base_ms=10, backoff_max_ms=20)
    webhook = uuid.uuid5(job.id, "done")
    await wait_for(
        lambda: _states_are(db_url, [(webhook, "failed", WEBHOOK_MAX_ATTEMPTS)]),
        message="the webhook dead-lettered",
    )
    assert receiver.received == []
    error = await last_error(db_url, webhook)
    assert "the SSRF guard refuses the callback URL" in error
    assert "127.0.0.1" not in error
