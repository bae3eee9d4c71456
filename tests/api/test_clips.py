"""Real clips through the API and a real worker: upload, cut (copy and re-encode), progress,
signed download with Range, errors that must not be retried, clean scratch folders."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from clipper.db.session import create_engine
from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.probe import probe
from clipper.signals import StopSignals
from clipper.storage import LocalStorage, source_key
from clipper.worker.service import Worker, WorkerOptions
from tests.api.conftest import ApiFactory, settings_for
from tests.cli_helpers import CLIPPER, ROOT, environment
from tests.media_files import make_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "source.mp4", seconds=20)


async def _upload(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    with path.open("rb") as file:
        return await client.post("/api/uploads", files={"file": (path.name, file, "video/mp4")})


async def _wait_finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}")).json()
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def _clip(client: httpx.AsyncClient, upload_key: str, start: str, end: str) -> str:
    body = {"sourceType": "upload", "uploadKey": upload_key, "start": start, "end": end}
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


@pytest.mark.parametrize(
    ("start", "end", "stage"),
    [
        ("00:00:04", "00:00:10", "cut"),  # on a keyframe: stream copy
        ("00:00:05.300", "00:00:08.800", "encode"),  # between keyframes: accurate re-encode
    ],
)
async def test_upload_cut_and_download_a_clip(
    make_client: ApiFactory,
    worker: Worker,
    video: Path,
    data_dir: Path,
    tmp_path: Path,
    start: str,
    end: str,
    stage: str,
) -> None:
    client: httpx.AsyncClient = await make_client()
    uploaded = await _upload(client, video)
    assert uploaded.status_code == 201, uploaded.text
    assert abs(uploaded.json()["durationMs"] - 20_000) <= 100
    job_id = await _clip(client, uploaded.json()["uploadKey"], start, end)
    job = await _wait_finished(client, job_id)
    assert (job["status"], job["progress"], job["attempts"]) == ("done", 100, 1)
    events = (await client.get(f"/api/jobs/{job_id}/events")).json()
    progress = [e["payload"] for e in events if e["type"] == "progress"]
    assert [p["pct"] for p in progress] == sorted(p["pct"] for p in progress)
    assert progress[-1]["pct"] == 100
    assert {p["stage"] for p in progress} >= {"probe", stage, "store"}

    links = (await client.get(f"/api/jobs/{job_id}/result")).json()
    url = httpx.URL(links["video"]["url"])
    download = await client.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(download.content)
    info = await probe(clip)
    expected = _ms(end) - _ms(start)
    assert abs(info.duration_ms - expected) <= DURATION_TOLERANCE_MS
    assert (info.has_video, info.has_audio) == (True, True)
    ranged = await client.get(url, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.content == download.content[:100]
    tampered = url.copy_set_param("signature", "x" * 43)
    assert (await client.get(tampered)).status_code == 401
    assert list((data_dir / "scratch").iterdir()) == []  # scratch folders are removed


def _ms(timecode: str) -> int:
    hours, minutes, seconds = timecode.split(":")
    return int((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


async def _forget_media(db_url: str, upload_key: str) -> None:
    """Make the upload look like one stored before uploads recorded what they hold (or like a
    URL source): only the worker can then find out that a request does not fit it."""
    engine = create_engine(db_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE uploads SET media = NULL WHERE key = :key"), {"key": upload_key}
        )
    await engine.dispose()


async def _no_dead_letters(client: httpx.AsyncClient, job_id: str) -> None:
    """The job failed as the user's fault: no retry, no dead letter (so no on-call alert)."""
    events = [e["type"] for e in (await client.get(f"/api/jobs/{job_id}/events")).json()]
    assert "retry" not in events
    assert "dlq" not in events
    assert events[-1] == "failed"
    assert (await client.get("/api/dlq")).json() == []


async def test_a_segment_outside_the_source_fails_once_with_its_code(
    make_client: ApiFactory, worker: Worker, video: Path, data_dir: Path, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, video)).json()["uploadKey"]
    await _forget_media(db_url, key)  # else refused at the door (test_refusals.py)
    job_id = await _clip(client, key, "00:00:30", "00:00:40")
    early = await client.get(f"/api/jobs/{job_id}/result")
    assert early.status_code in (409, 200)  # NOT_READY unless it already failed
    job = await _wait_finished(client, job_id)
    assert (job["status"], job["error"]["code"], job["attempts"]) == (
        "failed",
        "SEGMENT_OUT_OF_RANGE",
        1,
    )  # the user's: no retries
    assert "starts at 30 s" in job["error"]["message"]  # the start, not the end, is past it
    await _no_dead_letters(client, job_id)
    not_ready = await client.get(f"/api/jobs/{job_id}/result")
    assert not_ready.status_code == 409
    assert not_ready.json()["error"]["code"] == "NOT_READY"
    assert list((data_dir / "scratch").iterdir()) == []


async def test_uploads_are_checked(make_client: ApiFactory, video: Path, tmp_path: Path) -> None:
    client: httpx.AsyncClient = await make_client(max_clip_input_duration_sec=5, max_input_mb=2)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 1000)
    refused = await _upload(client, corrupt)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "file"
    too_long = await _upload(client, video)  # 20 s against a 5 s limit
    assert too_long.status_code == 422
    assert "MAX_CLIP_INPUT_DURATION_SEC" in too_long.json()["error"]["message"]
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * (3 * 2**20))
    too_big = await _upload(client, big)
    assert too_big.status_code == 413
    assert "2 MB (MAX_INPUT_MB)" in too_big.json()["error"]["message"]
    missing = await client.post(
        "/api/jobs",
        json={
            "sourceType": "upload",
            "uploadKey": "up_" + "a" * 32,
            "start": "00:00:00",
            "end": "00:00:01",
        },
    )
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0] == {
        "field": "uploadKey",
        "message": "no upload has this key",
    }
    malformed = await client.post(
        "/api/jobs",
        json={
            "sourceType": "upload",
            "uploadKey": "../../etc/passwd",
            "start": "00:00:00",
            "end": "00:00:01",
        },
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["details"][0]["field"] == "uploadKey"


async def test_a_worker_killed_mid_cut_leaves_the_job_to_the_next_one(
    make_client: ApiFactory, db_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    long_source = make_video(tmp_path_factory.mktemp("long") / "long.mp4", seconds=120)
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, long_source)).json()["uploadKey"]
    # Off the keyframes: a re-encode of 110 s takes long enough to be killed midway.
    job_id = await _clip(client, key, "00:00:01.500", "00:01:51.500")
    env = environment(
        DATABASE_URL=db_url,
        DATA_DIR=str(data_dir),
        QUEUE_VISIBILITY_SEC="2",
        CLIP_MAX_DURATION_SEC="600",
    )
    first = _worker(env)
    try:
        await _wait_for_stage(client, job_id, "encode")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    leftovers = list((data_dir / "scratch").iterdir())
    assert leftovers  # the killed worker's folder is left over
    for folder in leftovers:  # untouched for longer than a lease, as it would be by now
        os.utime(folder, (time.time() - 60, time.time() - 60))
    second = _worker(env)
    try:
        job = await _wait_finished(client, job_id)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert (job["status"], job["attempts"]) == ("done", 2)
    events = [e["type"] for e in (await client.get(f"/api/jobs/{job_id}/events")).json()]
    assert events.count("done") == 1
    link = (await client.get(f"/api/jobs/{job_id}/result")).json()["video"]["url"]
    clip = data_dir.parent / "downloaded.mp4"
    clip.write_bytes((await client.get(httpx.URL(link))).content)
    assert abs((await probe(clip)).duration_ms - 110_000) <= DURATION_TOLERANCE_MS
    assert list((data_dir / "scratch").iterdir()) == []  # the second attempt cleaned up


def _worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLIPPER, "worker", "--metrics-port", "0", "--no-dlq"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_for_stage(client: httpx.AsyncClient, job_id: str, stage: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = (await client.get(f"/api/jobs/{job_id}/events")).json()
        if any(e["payload"].get("stage") == stage for e in events if e["type"] == "progress"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {stage} progress for {job_id}")


class MediaServer:
    """Serves one file over HTTP on 127.0.0.1 (the test's stand-in for a video site), and
    counts the GET requests it answered."""

    def __init__(self, path: Path) -> None:
        body = path.read_bytes()
        self.gets = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.gets += 1
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/talk.mp4"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def media_server(video: Path) -> Iterator[MediaServer]:
    server = MediaServer(video)
    yield server
    server.http.shutdown()
    server.http.server_close()


async def test_url_sources_are_off_unless_enabled(
    make_client: ApiFactory, media_server: MediaServer
) -> None:
    client: httpx.AsyncClient = await make_client()
    body = {
        "sourceType": "youtube",
        "youtubeUrl": media_server.url,
        "start": "00:00:04",
        "end": "00:00:10",
    }
    refused = await client.post("/api/jobs", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "URL_SOURCES_DISABLED"
    guarded: httpx.AsyncClient = await make_client(enable_ytdlp=True)
    forbidden = await guarded.post("/api/jobs", json=body)  # loopback, not allowlisted
    assert forbidden.status_code == 422
    assert forbidden.json()["error"]["details"][0]["field"] == "youtubeUrl"
    assert "loopback" in forbidden.json()["error"]["message"]


async def test_a_url_source_is_fetched_through_the_guard_and_cut(
    make_client: ApiFactory, db_url: str, data_dir: Path, media_server: MediaServer, tmp_path: Path
) -> None:
    allow = {"enable_ytdlp": True, "allowlist_hosts": "127.0.0.1"}
    settings = settings_for(data_dir=data_dir, **allow)
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    try:
        client: httpx.AsyncClient = await make_client(**allow)
        accepted = await client.post(
            "/api/jobs",
            json={
                "sourceType": "youtube",
                "youtubeUrl": media_server.url,
                "start": "00:00:04",
                "end": "00:00:10",
            },
        )
        assert accepted.status_code == 202, accepted.text
        job = await _wait_finished(client, accepted.json()["id"])
    finally:
        await running.stop(StopSignals())
    assert job["status"] == "done", job
    events = (await client.get(f"/api/jobs/{job['id']}/events")).json()
    assert "fetch" in {e["payload"].get("stage") for e in events if e["type"] == "progress"}
    link = (await client.get(f"/api/jobs/{job['id']}/result")).json()["video"]["url"]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((await client.get(httpx.URL(link))).content)
    assert abs((await probe(clip)).duration_ms - 6_000) <= DURATION_TOLERANCE_MS
    assert list((data_dir / "scratch").iterdir()) == []


SUBTITLES = (
    "1\n00:00:01,000 --> 00:00:03,000\nBefore the clip\n\n"
    "2\n00:00:05,000 --> 00:00:07,500\nInside the clip\n\n"
    "3\n00:00:12,000 --> 00:00:14,000\nAfter the clip\n"
)


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("subs") / "talk.mp4", 20, subtitles=SUBTITLES)


async def _job_with(client: httpx.AsyncClient, key: str, **flags: Any) -> dict[str, Any]:
    body = {
        "sourceType": "upload",
        "uploadKey": key,
        "start": "00:00:04",
        "end": "00:00:10",
        **flags,
    }
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    return await _wait_finished(client, response.json()["id"])


async def test_subtitles_are_cut_to_the_clip_and_can_be_burned_in(
    make_client: ApiFactory, worker: Worker, subtitled: Path, data_dir: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, subtitled)).json()["uploadKey"]
    job = await _job_with(client, key, withSubtitles=True, subtitleLang="en")
    assert job["status"] == "done", job
    links = (await client.get(f"/api/jobs/{job['id']}/result")).json()
    srt = (await client.get(httpx.URL(links["subtitles"]["url"]))).text
    assert "Inside the clip" in srt
    assert "00:00:01,000 --> 00:00:03,500" in srt  # shifted to the clip's own time
    assert "Before the clip" not in srt
    assert "After the clip" not in srt
    assert job["subtitles"] == {  # from the source's own track, not from speech
        "source": "track",
        "cues": srt.count(" --> "),
        "language": "eng",
        "model": None,
        "note": None,
    }
    events = (await client.get(f"/api/jobs/{job['id']}/events")).json()
    [made] = [e["payload"] for e in events if e["type"] == "subtitles"]
    assert made == job["subtitles"]
    burned = await _job_with(client, key, withSubtitles=True, burnSubtitles=True)
    assert burned["status"] == "done", burned
    events = (await client.get(f"/api/jobs/{burned['id']}/events")).json()
    assert "encode" in {e["payload"].get("stage") for e in events if e["type"] == "progress"}
    assert list((data_dir / "scratch").iterdir()) == []


async def test_a_language_the_speech_model_cannot_hear_fails_at_once_with_its_code(
    make_client: ApiFactory, worker: Worker, subtitled: Path, video: Path, db_url: str
) -> None:
    """An upload whose media the API does not know (else refused at the door, see
    test_refusals.py): no sidecar and no German track, so the subtitles would come from
    speech, which the packaged English-only model cannot do. The user's to fix: failed at
    once, without a dead letter."""
    client: httpx.AsyncClient = await make_client()
    plain = (await _upload(client, video)).json()["uploadKey"]
    await _forget_media(db_url, plain)
    none = await _job_with(client, plain, withSubtitles=True, subtitleLang="de")
    assert (none["status"], none["error"]["code"], none["attempts"]) == (
        "failed",
        "SUBTITLE_LANG_UNSUPPORTED",
        1,
    )
    assert "ASR_MODEL" in none["error"]["message"]
    assert "/" not in none["error"]["message"]  # no server path (the model's folder)
    await _no_dead_letters(client, none["id"])
    key = (await _upload(client, subtitled)).json()["uploadKey"]  # its one track is English
    await _forget_media(db_url, key)
    german = await _job_with(client, key, withSubtitles=True, subtitleLang="de")
    assert (german["status"], german["error"]["code"], german["attempts"]) == (
        "failed",
        "SUBTITLE_LANG_UNSUPPORTED",
        1,
    )
    await _no_dead_letters(client, german["id"])


async def test_burning_without_fonts_fails_clearly(
    make_client: ApiFactory, db_url: str, data_dir: Path, subtitled: Path, tmp_path: Path
) -> None:
    settings = settings_for(data_dir=data_dir, subtitle_fonts_dir=tmp_path / "no-fonts")
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    try:
        client: httpx.AsyncClient = await make_client()
        key = (await _upload(client, subtitled)).json()["uploadKey"]
        job = await _job_with(client, key, withSubtitles=True, burnSubtitles=True)
    finally:
        await running.stop(StopSignals())
    assert (job["status"], job["error"]["code"], job["attempts"]) == (
        "failed",
        "SUBTITLE_FONTS_MISSING",
        1,
    )
    assert str(tmp_path) not in job["error"]["message"]  # the server's folders stay its own
    # The server's setup is at fault: dead-lettered, so the operator is alerted.
    assert [letter["jobId"] for letter in (await client.get("/api/dlq")).json()] == [job["id"]]


async def test_an_uploaded_srt_sidecar_is_cut_with_the_clip(
    make_client: ApiFactory, worker: Worker, video: Path, tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    media = (await _upload(client, video)).json()  # this video has no subtitle track
    sidecar_file = tmp_path / "talk.srt"
    sidecar_file.write_text(SUBTITLES)
    sidecar = await _upload(client, sidecar_file)
    assert sidecar.status_code == 201, sidecar.text
    assert sidecar.json()["kind"] == "subtitles"
    needs_flag = await client.post(
        "/api/jobs",
        json={
            "sourceType": "upload",
            "uploadKey": media["uploadKey"],
            "start": "00:00:04",
            "end": "00:00:10",
            "subtitlesKey": sidecar.json()["uploadKey"],
        },
    )
    assert needs_flag.json()["error"]["details"][0]["field"] == "subtitlesKey"
    wrong_kind = await client.post(
        "/api/jobs",
        json={
            "sourceType": "upload",
            "uploadKey": media["uploadKey"],
            "start": "00:00:04",
            "end": "00:00:10",
            "withSubtitles": True,
            "subtitlesKey": media["uploadKey"],
        },
    )
    assert wrong_kind.status_code == 422
    assert wrong_kind.json()["error"]["details"][0]["field"] == "subtitlesKey"
    job = await _job_with(
        client, media["uploadKey"], withSubtitles=True, subtitlesKey=sidecar.json()["uploadKey"]
    )
    assert job["status"] == "done", job
    links = (await client.get(f"/api/jobs/{job['id']}/result")).json()
    srt = (await client.get(httpx.URL(links["subtitles"]["url"]))).text
    assert "Inside the clip" in srt
    assert "00:00:01,000 --> 00:00:03,500" in srt
    assert job["subtitles"]["source"] == "sidecar"


async def test_a_source_corrupted_after_upload_fails_at_once_without_retries(
    make_client: ApiFactory, worker: Worker, video: Path, data_dir: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, video)).json()["uploadKey"]
    LocalStorage(data_dir).path(source_key(key)).write_bytes(b"\x00" * 4096)  # bit rot
    job = await _job_with(client, key)
    assert (job["status"], job["error"]["code"], job["attempts"]) == (
        "failed",
        "UNREADABLE_INPUT",
        1,
    )
    await _no_dead_letters(client, job["id"])


async def test_a_source_cut_short_after_upload_fails_at_once_named_truncated(
    make_client: ApiFactory, worker: Worker, video: Path, data_dir: Path, tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, video)).json()["uploadKey"]
    indexed_first = tmp_path / "faststart.mp4"  # its index first: a cut-off copy still opens
    remux = ["-c", "copy", "-movflags", "+faststart", str(indexed_first)]
    await asyncio.to_thread(
        subprocess.run,
        [ffmpeg_path(), "-y", "-loglevel", "error", "-i", str(video), *remux],
        check=True,
    )
    data = indexed_first.read_bytes()
    LocalStorage(data_dir).path(source_key(key)).write_bytes(data[: len(data) // 2])
    job = await _job_with(client, key)
    assert (job["status"], job["error"]["code"], job["attempts"]) == (
        "failed",
        "SOURCE_TRUNCATED",
        1,
    )
    assert "truncated" in job["error"]["message"]
    await _no_dead_letters(client, job["id"])
