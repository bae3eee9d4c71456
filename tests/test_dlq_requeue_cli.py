"""`clipper dlq requeue` on real job rows: a dead-lettered clip job runs again to a valid
clip, and the command says exactly what it did."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from tests.cli_helpers import clipper, start_clipper_up
from tests.helpers import wait_until
from tests.media_files import make_video


def _job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = api.get(f"/api/jobs/{job_id}").json()
    return job


def _dead_letter_a_clip_job(api: httpx.Client, fonts: Path, tmp_path: Path) -> str:
    """A job that burns subtitles on a server whose `fonts` folder is empty (a failure of the
    setup: dead-lettered at once), whose operator then puts a font there; returns the failed
    job's id."""
    sample = make_video(tmp_path / "talk.mp4", seconds=10)
    with sample.open("rb") as file:
        key = api.post("/api/uploads", files={"file": ("talk.mp4", file)}).json()["uploadKey"]
    srt = b"1\n00:00:03,000 --> 00:00:04,000\nHello\n"
    sidecar = api.post("/api/uploads", files={"file": ("talk.srt", srt)}).json()["uploadKey"]
    accepted = api.post(
        "/api/jobs",
        json={
            "sourceType": "upload",
            "uploadKey": key,
            "start": "00:00:02",
            "end": "00:00:06",
            "withSubtitles": True,
            "burnSubtitles": True,
            "subtitlesKey": sidecar,
        },
    )
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["id"]
    wait_until(lambda: _job(api, job_id)["status"] == "failed", message="the job failed")
    assert _job(api, job_id)["error"]["code"] == "SUBTITLE_FONTS_MISSING"
    assert [letter["jobId"] for letter in api.get("/api/dlq").json()] == [job_id]
    font = next(Path("/usr/share/fonts").rglob("*.ttf"))  # the fix: a font where it belongs
    shutil.copy(font, fonts / font.name)
    return job_id


def test_a_dead_lettered_clip_job_requeued_by_the_cli_ends_done_with_a_valid_clip(
    db_url: str, tmp_path: Path
) -> None:
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    process, address = start_clipper_up(
        db_url,
        QUEUE_RETRY_BACKOFF_MS_BASE="100",
        DATA_DIR=str(tmp_path / "data"),
        SUBTITLE_FONTS_DIR=str(fonts),
    )
    try:
        with httpx.Client(base_url=address, timeout=10) as api:
            job_id = _dead_letter_a_clip_job(api, fonts, tmp_path)
            listed = clipper("dlq", "list", DATABASE_URL=db_url, COLUMNS="80")
            # The whole id on a narrow terminal, and the error's code, not its class name.
            assert job_id in listed.stdout
            assert "SUBTITLE_FONTS_MISSING" in listed.stdout
            assert "SubtitleFontsMissingError" not in listed.stdout
            as_json = clipper("dlq", "list", "--json", DATABASE_URL=db_url)
            [letter] = [json.loads(line) for line in as_json.stdout.splitlines()]
            assert (letter["jobId"], letter["code"]) == (job_id, "SUBTITLE_FONTS_MISSING")

            requeued = clipper("dlq", "requeue", job_id, DATABASE_URL=db_url)

            assert requeued.returncode == 0, requeued.stderr
            assert "requeued 1 job(s)" in requeued.stdout
            assert "not requeued" not in requeued.stderr
            wait_until(lambda: _job(api, job_id)["status"] == "done", message="done after requeue")
            assert _job(api, job_id)["attempts"] == 1  # fresh attempts: this was the first
            clip = tmp_path / "clip.mp4"
            clip.write_bytes(
                api.get(api.get(f"/api/jobs/{job_id}/result").json()["video"]["url"]).content
            )
            info = asyncio.run(probe(clip))
            assert (info.has_video, info.has_audio) == (True, True)
            assert abs(info.duration_ms - 4_000) <= DURATION_TOLERANCE_MS
            events = api.get(f"/api/jobs/{job_id}/events").json()
            (requeue_event,) = [e for e in events if e["type"] == "requeued"]
            assert requeue_event["payload"]["previous_error"]["code"] == "SUBTITLE_FONTS_MISSING"
            assert requeue_event["payload"]["previous_error"]["message"]
            assert [e["type"] for e in events][-1] == "done"
            assert api.get("/api/dlq").json() == []
        assert job_id not in clipper("dlq", "list", DATABASE_URL=db_url).stdout

        unknown = str(uuid.uuid4())
        again = clipper("dlq", "requeue", job_id, unknown, DATABASE_URL=db_url)
        assert again.returncode == 1
        assert "requeued 0 job(s)" in again.stdout
        assert f"{job_id}: not requeued, it is done, not failed" in again.stderr
        assert f"{unknown}: not requeued, no such job" in again.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def _count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_requeue_all_requeues_every_dead_lettered_job_and_nothing_else(
    db_url: str, tmp_path: Path
) -> None:
    # 2 failed jobs among others
    seeded = clipper("seed", "--count", "2", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert seeded.returncode == 0, seeded.stderr
    both = clipper("dlq", "requeue", "--all", str(uuid.uuid4()), DATABASE_URL=db_url)
    assert both.returncode == 2
    assert "name job ids, or pass --all" in both.stderr

    requeued = clipper("dlq", "requeue", "--all", DATABASE_URL=db_url)

    assert requeued.returncode == 0, requeued.stderr
    assert "requeued 2 job(s)" in requeued.stdout
    assert _count(db_url, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 0
    assert _count(db_url, "SELECT count(*) FROM dlq_jobs") == 0
    assert _count(db_url, "SELECT count(*) FROM job_events WHERE type = 'requeued'") == 2
    # The seeded failed jobs had no message: each now has a fresh one, ready to run.
    assert (
        _count(
            db_url,
            "SELECT count(*) FROM clipper_queue.messages m JOIN job_events e"
            " ON e.job_id = m.job_id AND e.type = 'requeued'"
            " WHERE m.queue = 'clips' AND m.state = 'ready' AND m.attempts = 0",
        )
        == 2
    )
    assert "requeued 0 job(s)" in clipper("dlq", "requeue", "--all", DATABASE_URL=db_url).stdout
