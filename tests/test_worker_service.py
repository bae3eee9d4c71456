"""`clipper worker` as a process: it works the queue, serves metrics, and stops cleanly."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import urllib.request
import uuid

import psycopg
import pytest

from tests.cli_helpers import CLIPPER, ROOT, environment
from tests.helpers import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _publish(url: str, count: int) -> list[uuid.UUID]:
    jobs = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url) as conn:
        for job in jobs:
            conn.execute(
                "INSERT INTO clipper_queue.messages (queue, job_id, priority, max_attempts)"
                " VALUES ('clips', %s, 1, 3)",
                (job,),
            )
    return jobs


def _states(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM clipper_queue.messages GROUP BY state"
        ).fetchall()
    return {state: count for state, count in rows}


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLIPPER, "worker", *args],
        env=environment(**env),
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_worker_runs_jobs_serves_metrics_and_stops_on_signal(
    db_url: str, stop_signal: signal.Signals
) -> None:
    _publish(db_url, 5)
    port = _free_port()
    worker = _start("--metrics-port", str(port), DATABASE_URL=db_url)
    try:
        wait_until(lambda: _states(db_url).get("completed") == 5)

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                return str(page.read().decode())

        wait_until(lambda: 'clipper_queue_completed_total{queue="clips"} 5.0' in scrape())
        assert "clipper_queue_depth_scrape_ok 1.0" in scrape()
    finally:
        worker.send_signal(stop_signal)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "worker stopped" in output
    assert '"job_id"' in output  # JSON lines carrying the job id


def test_worker_migrates_an_empty_database_when_asked(empty_db_url: str) -> None:
    worker = _start("--migrate", "--metrics-port", "0", DATABASE_URL=empty_db_url)
    try:
        wait_until(lambda: _has_queue_table(empty_db_url))
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output


def _has_queue_table(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('clipper_queue.messages')").fetchone()
    return bool(row and row[0])


def test_a_taken_metrics_port_is_a_clear_startup_error(db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = _start("--metrics-port", str(port), DATABASE_URL=db_url)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 2
    assert "set METRICS_PORT" in output
    assert "Traceback" not in output


def test_sigterm_during_start_up_still_exits_cleanly(db_url: str) -> None:
    """Importing and migrating take a second or two; a SIGTERM then must not kill it (-15)."""
    for delay in (0.2, 0.8, 1.5):
        worker = _start("--metrics-port", "0", DATABASE_URL=db_url)
        with contextlib.suppress(subprocess.TimeoutExpired):  # signal it `delay` s in
            worker.wait(timeout=delay)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, (delay, output)
        assert "Traceback" not in output
