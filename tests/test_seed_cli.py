"""`clipper seed` against a running worker: the worker completes the seeded queued jobs and
leaves the others alone. Seeding makes no dead letter and no alert, and leaves no job
processing."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli_helpers import clipper, start_clipper_up
from tests.helpers import wait_until
from tests.local_server import serving


class _AlertReceiver(ThreadingHTTPServer):
    """ALERT_WEBHOOK_URL on 127.0.0.1: takes every POST, and keeps its body."""

    def __init__(self) -> None:
        self.posts: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.posts.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def alerts() -> Iterator[_AlertReceiver]:
    with serving(_AlertReceiver()) as server:
        yield server


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _unfinished(url: str) -> int:
    [(count,)] = _rows(url, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'processing')")
    return int(count)


def test_a_running_worker_completes_or_leaves_alone_every_seeded_job(
    db_url: str, tmp_path: Path, alerts: _AlertReceiver
) -> None:
    data_dir = str(tmp_path / "data")
    seeded = clipper("seed", "--count", "2", DATABASE_URL=db_url, DATA_DIR=data_dir)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 8 job(s): 2 each queued, done, failed, cancelled" in seeded.stdout
    alert_url = f"http://127.0.0.1:{alerts.server_address[1]}/alerts"
    process, _ = start_clipper_up(
        db_url, DATA_DIR=data_dir, ALERT_WEBHOOK_URL=alert_url, QUEUE_RETRY_BACKOFF_MS_BASE="100"
    )
    try:
        wait_until(lambda: _unfinished(db_url) == 0, timeout=60, message="no job queued")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr

    states = dict(_rows(db_url, "SELECT status, count(*) FROM jobs GROUP BY 1"))
    assert states == {"done": 4, "failed": 2, "cancelled": 2}  # the 2 queued ones were cut
    # The only failures are the seeded ones: no run of a seeded job failed.
    failures = _rows(db_url, "SELECT error_code, attempts FROM jobs WHERE status = 'failed'")
    assert failures == [("SAMPLE_FAILURE", 1)] * 2
    assert _rows(db_url, "SELECT reason FROM dlq_jobs") == [("SAMPLE_FAILURE",)] * 2
    dead = "SELECT count(*) FROM clipper_queue.messages WHERE queue = 'clips.dlq'"
    assert _rows(db_url, dead) == [(0,)]  # no dead letter: nothing to alert about
    assert alerts.posts == []
    retries = "SELECT count(*) FROM job_events WHERE type = 'retry'"
    assert _rows(db_url, retries) == [(2,)]  # the seeded failures' own: no run was retried
