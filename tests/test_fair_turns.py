"""Tenants take turns: over HTTP, key A submits 200 bulk clips, then key B submits 5, and
all of B's finish before A's 20th (without turns B would wait for all 200 of A's)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
import psycopg

from clipper.db.repositories import ApiKeyRepository
from clipper.db.session import create_engine, session_factory
from tests.api.conftest import create_key, key_id
from tests.cli_helpers import CLIPPER, ROOT, environment, start_clipper_up
from tests.helpers import wait_until
from tests.media_files import make_video


async def _unlimited(db_url: str, token: str) -> None:
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine).begin() as session:
        await ApiKeyRepository(session).set_limits(
            key_id(token), rate_per_minute=10_000, max_active_jobs=10_000
        )
    await engine.dispose()


def _upload(api: httpx.Client, token: str, video: Path) -> str:
    with video.open("rb") as file:
        response = api.post(
            "/api/uploads", files={"file": ("s.mp4", file)}, headers={"X-API-Key": token}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["uploadKey"])


def _submit(api: httpx.Client, token: str, upload_key: str, count: int) -> list[str]:
    body = {
        "sourceType": "upload",
        "uploadKey": upload_key,
        "start": "00:00:00",
        "end": "00:00:01",
        "priority": "bulk",
    }
    ids = []
    for _ in range(count):
        response = api.post("/api/jobs", json=body, headers={"X-API-Key": token})
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["id"]))
    return ids


def _done_in_order(db_url: str) -> list[str]:
    """Job ids in the order their `done` events were written."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT job_id FROM job_events WHERE type = 'done' ORDER BY id")
        return [str(row[0]) for row in rows]


def test_a_tenants_backlog_does_not_make_another_wait(db_url: str, tmp_path: Path) -> None:
    video = make_video(tmp_path / "s.mp4", seconds=3, size="160x120")
    a, b = asyncio.run(create_key(db_url)), asyncio.run(create_key(db_url))
    asyncio.run(_unlimited(db_url, a))  # 200 jobs at once: over the default rate and cap
    data_dir = str(tmp_path / "data")
    # The API alone first: the whole backlog is queued before any worker takes from it.
    api_process, address = start_clipper_up(
        db_url, command="api", ENABLE_API_KEYS="true", DATA_DIR=data_dir
    )
    worker = None
    try:
        with httpx.Client(base_url=address, timeout=30) as api:
            a_jobs = _submit(api, a, _upload(api, a, video), 200)
            b_jobs = _submit(api, b, _upload(api, b, video), 5)
        worker = subprocess.Popen(
            [*CLIPPER, "worker", "--metrics-port", "0"],
            cwd=ROOT,
            env=environment(DATABASE_URL=db_url, DATA_DIR=data_dir, QUEUE_CONCURRENCY="2"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: set(b_jobs) <= set(_done_in_order(db_url)),
            timeout=120,
            message="B's 5 clips done",
        )
        order = _done_in_order(db_url)
        last_of_b = max(order.index(job) for job in b_jobs)
        a_done_before = [job for job in order[:last_of_b] if job in set(a_jobs)]
        assert len(a_done_before) < 19, (len(a_done_before), order[: last_of_b + 1])
    finally:
        for process in (worker, api_process):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=30)
