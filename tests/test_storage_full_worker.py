"""A full DATA_DIR under a running worker: a systemic cause, not the jobs' fault. The worker
pauses claiming and gives each attempt back uncharged (no retry, no dead letter) for as long
as the disk stays full, and finishes every job once by itself when space is freed."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg

from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from tests.api.test_storage_full import fill, tmpfs
from tests.cli_helpers import start_clipper_up
from tests.helpers import wait_until
from tests.media_files import make_video

JOBS = 5
CLIP = {"sourceType": "upload", "start": "00:00:02", "end": "00:00:08"}


class JsonLog:
    """Drains a process's stderr (so it never blocks on a full pipe), keeping its JSON lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[dict[str, Any]] = []
        self._stream = process.stderr
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def storage_full_pauses(self) -> int:
        return sum(
            line["message"].startswith("systemic failure STORAGE_FULL") for line in self.lines
        )

    def join(self) -> None:
        self._reader.join(timeout=10)


def _assert_nothing_charged(url: str) -> None:
    """No queue message past its first attempt, none failed or dead-lettered (`clips.dlq`),
    and no retry: what a systemic cause must never cost."""
    with psycopg.connect(url) as conn:
        messages = conn.execute(
            "SELECT queue, state, attempts FROM clipper_queue.messages "
            "WHERE attempts > 1 OR state = 'failed' OR queue <> 'clips'"
        ).fetchall()
        charged = conn.execute(
            "SELECT id, last_error FROM jobs WHERE attempts > 1 OR status = 'failed' "
            "OR last_error IS NOT NULL"
        ).fetchall()
    assert (messages, charged) == ([], [])


def _jobs(url: str) -> dict[str, tuple[str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, status, attempts FROM jobs").fetchall()
    return {str(job_id): (status, attempts) for job_id, status, attempts in rows}


def _event_types(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT job_id, type FROM job_events ORDER BY id").fetchall()
    events: dict[str, list[str]] = {}
    for job_id, kind in rows:
        events.setdefault(str(job_id), []).append(kind)
    return events


def test_a_full_data_dir_pauses_the_worker_without_charging_and_it_resumes_when_freed(
    db_url: str, tmp_path: Path
) -> None:
    sample = make_video(tmp_path / "talk.mp4", seconds=20)
    with tmpfs(tmp_path / "data", "24m") as data_dir:
        process, address = start_clipper_up(
            db_url,
            DATA_DIR=str(data_dir),
            QUEUE_MAX_ATTEMPTS="2",
            QUEUE_CONCURRENCY="2",
            QUEUE_RETRY_BACKOFF_MS_BASE="50",
            QUEUE_POLL_INTERVAL_SEC="0.2",
        )
        log = JsonLog(process)
        with process:  # closes its pipes
            try:
                with httpx.Client(base_url=address, timeout=10) as api:
                    _run_through_a_full_disk(api, db_url, data_dir, sample, log)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
                log.join()
    assert process.returncode == 0


def _run_through_a_full_disk(
    api: httpx.Client, url: str, data_dir: Path, sample: Path, log: JsonLog
) -> None:
    with sample.open("rb") as file:
        uploaded = api.post("/api/uploads", files={"file": ("talk.mp4", file)})
    assert uploaded.status_code == 201, uploaded.text
    filler = fill(data_dir, leave=16 * 1024)
    body = {**CLIP, "uploadKey": uploaded.json()["uploadKey"]}
    for _ in range(JOBS):
        assert api.post("/api/jobs", json=body).status_code == 202

    # Four pauses take at least two rounds of claims at QUEUE_CONCURRENCY=2: the worker
    # claimed again after a pause, and the disk was still full. Checked on every poll.
    def paused_repeatedly() -> bool:
        _assert_nothing_charged(url)
        return log.storage_full_pauses() >= 4

    wait_until(paused_repeatedly, timeout=60, message="the worker to pause on the full disk")
    _assert_nothing_charged(url)
    seen = {kind for events in _event_types(url).values() for kind in events}
    assert seen <= {"created", "processing", "progress"}  # no retry, failure or dead letter

    filler.unlink()
    wait_until(
        lambda: {status for status, _ in _jobs(url).values()} == {"done"},
        timeout=60,
        message="every job done once the disk has room",
    )
    jobs = _jobs(url)
    assert len(jobs) == JOBS
    assert {attempts for _, attempts in jobs.values()} == {1}  # never charged
    for job_id, events in _event_types(url).items():
        assert events.count("done") == 1, events
        assert not {"retry", "failed", "dlq"} & set(events), events
        _assert_valid_clip(api, job_id, sample.with_name(f"clip-{job_id}.mp4"))


def _assert_valid_clip(api: httpx.Client, job_id: str, clip: Path) -> None:
    link = api.get(f"/api/jobs/{job_id}/result").json()["video"]["url"]
    clip.write_bytes(api.get(link).content)
    info = asyncio.run(probe(clip))
    assert abs(info.duration_ms - 6_000) <= DURATION_TOLERANCE_MS
    assert (info.has_video, info.has_audio) == (True, True)
