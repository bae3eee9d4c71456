"""Clipper as people run it: `clipper up` over HTTP, alerts to a webhook, a worker killed
mid-job."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from clipper.db.session import create_engine, session_factory
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import SourceType
from clipper.domain.tenancy import OPERATOR
from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from clipper.queue import QueueAdapter, QueueConfig
from clipper.services.jobs import create_job
from tests.cli_helpers import CLIPPER, ROOT, environment, start_clipper_up
from tests.helpers import wait_until


class Webhook:
    """A local receiver: answers 500 to the first POST (to prove retries), 204 after."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.calls = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.calls += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.calls == 1:
                    self.send_response(500)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_clipper_clip_makes_a_clip_and_a_failed_job_alerts_the_webhook(
    db_url: str, webhook: Webhook, tmp_path: Path
) -> None:
    no_fonts = tmp_path / "no-fonts"  # a deployment mistake: burning subtitles cannot work
    no_fonts.mkdir()
    process, address = start_clipper_up(
        db_url,
        ALERT_WEBHOOK_URL=webhook.url,
        QUEUE_RETRY_BACKOFF_MS_BASE="100",
        DATA_DIR=str(tmp_path / "data"),
        SUBTITLE_FONTS_DIR=str(no_fonts),
    )
    try:
        sample = tmp_path / "talk.mp4"
        made = subprocess.run(
            [*CLIPPER, "sample-video", str(sample), "--seconds", "30"],
            cwd=ROOT,
            env=environment(),
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        clipped = subprocess.run(
            [
                *CLIPPER,
                "clip",
                str(sample),
                "--start",
                "00:00:05",
                "--end",
                "00:00:14",
                "--cut",
                "fast",  # from the keyframe before 5 s: the sample has one every 2 s
                "--out",
                str(tmp_path / "clip.mp4"),
            ],
            cwd=ROOT,
            env=environment(CLIPPER_API_URL=address),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert clipped.returncode == 0, clipped.stderr
        assert "clip saved to" in clipped.stdout
        assert "(from 00:00:04.000)" in clipped.stdout  # where the fast cut really starts
        info = asyncio.run(probe(tmp_path / "clip.mp4"))
        assert abs(info.duration_ms - 10_000) <= DURATION_TOLERANCE_MS  # 4-14 s, not 5-14 s
        assert "signature=" not in clipped.stderr.replace("signature=***", "")

        with httpx.Client(base_url=address, timeout=10) as api, sample.open("rb") as file:
            key = api.post("/api/uploads", files={"file": ("talk.mp4", file)}).json()["uploadKey"]
            sidecar = api.post(
                "/api/uploads",
                files={"file": ("talk.srt", b"1\n00:00:05,000 --> 00:00:06,000\nHi\n")},
            ).json()["uploadKey"]
            span = {
                "sourceType": "upload",
                "uploadKey": key,
                "start": "00:00:04",
                "end": "00:00:08",
            }
            # The user's mistake is refused at the door: no job, no alert.
            past_the_end = api.post("/api/jobs", json={**span, "end": "00:01:30"})
            assert past_the_end.status_code == 422, past_the_end.text
            assert past_the_end.json()["error"]["details"][0]["field"] == "end"
            # The deployment's is a failure of the system: dead-lettered at once, alerted.
            accepted = api.post(
                "/api/jobs",
                json={
                    **span,
                    "withSubtitles": True,
                    "burnSubtitles": True,
                    "subtitlesKey": sidecar,
                },
            )
            assert accepted.status_code == 202, accepted.text
            job_url = accepted.json()["links"]["self"]
            wait_until(lambda: api.get(job_url).json()["status"] == "failed", message="failed job")
            job = api.get(job_url).json()
            assert (job["error"]["code"], job["attempts"]) == ("SUBTITLE_FONTS_MISSING", 1)
            events = [e["type"] for e in api.get(accepted.json()["links"]["events"]).json()]
            assert events == ["created", "processing", "progress", "failed", "dlq"]
            assert [letter["jobId"] for letter in api.get("/api/dlq").json()] == [job["id"]]
        wait_until(lambda: webhook.received, message="the webhook alert")
        assert webhook.calls >= 2  # the first POST failed and was retried
        assert [alert["jobId"] for alert in webhook.received] == [job["id"]]  # this one only
        assert webhook.received[0]["error"]["code"] == "SUBTITLE_FONTS_MISSING"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "worker stopped" in stderr


def _events(url: str, job_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT type FROM job_events WHERE job_id = %s ORDER BY id", (job_id,)
        ).fetchall()
    return [row[0] for row in rows]


def test_a_job_whose_worker_is_killed_mid_cut_completes_once_after_redelivery(
    db_url: str,
) -> None:
    env = environment(DATABASE_URL=db_url, QUEUE_VISIBILITY_SEC="1")

    def worker() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.job_worker_process"],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    job_id = asyncio.run(_create_job(db_url))
    first = worker()
    try:
        wait_until(
            lambda: "progress" in _events(db_url, job_id), message="the first attempt cutting"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    second = worker()
    try:
        wait_until(lambda: "done" in _events(db_url, job_id), message="done after redelivery")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    events = _events(db_url, job_id)
    assert events.count("done") == 1
    assert events[:3] == ["created", "processing", "progress"]
    assert events.count("processing") == 2
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT status, attempts FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row == ("done", 2)


async def _create_job(db_url: str) -> str:
    engine = create_engine(db_url, pool_size=1)
    queue = QueueAdapter(db_url, QueueConfig(queue="clips"))
    await queue.start()
    try:
        async with session_factory(engine).begin() as session:
            request = ClipRequest(SourceType.UPLOAD, 0, 10_000, upload_key="k")
            return str((await create_job(session, queue, request, OPERATOR)).job.id)
    finally:
        await queue.shutdown()
        await engine.dispose()


def test_clipper_api_alone_serves_and_stops_cleanly(db_url: str, tmp_path: Path) -> None:
    process, address = start_clipper_up(db_url, command="api", DATA_DIR=str(tmp_path / "data"))
    try:
        with httpx.Client(base_url=address, timeout=10) as api:
            assert api.get("/healthz").json() == {"status": "ok"}
            assert api.get("/readyz").json()["status"] == "ready"
            sample = tmp_path / "s.mp4"
            subprocess.run(
                [*CLIPPER, "sample-video", str(sample), "--seconds", "5"],
                cwd=ROOT,
                env=environment(),
                check=True,
                capture_output=True,
            )
            with sample.open("rb") as file:
                key = api.post("/api/uploads", files={"file": file}).json()["uploadKey"]
            accepted = api.post(
                "/api/jobs",
                json={
                    "sourceType": "upload",
                    "uploadKey": key,
                    "start": "00:00:01",
                    "end": "00:00:03",
                },
            )
            assert accepted.status_code == 202  # queued for whichever worker runs
            assert api.get(accepted.json()["links"]["self"]).json()["status"] == "queued"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
