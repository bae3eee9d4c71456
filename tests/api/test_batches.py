"""POST /api/jobs/batch over HTTP: clips of one source become ordinary jobs with one batch id,
stored and enqueued in one transaction (or not at all); idempotent; scoped to the caller's
tenant; a URL source is fetched once for the whole batch, and retention deletes that fetched
media once no job of the batch needs it any more."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clipper.db.repositories import JobRepository
from clipper.db.session import create_engine, session_factory
from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from clipper.queue import QueueAdapter, QueueMessage
from clipper.services.batches import media_lock_name
from clipper.services.retention import cleanup_batch_media
from clipper.signals import StopSignals
from clipper.storage import LocalStorage, batch_media_key
from clipper.worker.service import Worker, WorkerOptions
from tests.api.conftest import (
    SAMPLE_UPLOAD_KEY,
    ApiFactory,
    create_key,
    key_id,
    own_sample_upload,
    settings_for,
)
from tests.api.test_clips import MediaServer
from tests.helpers import wait_for
from tests.media_files import make_video

# Spelled as GET /api/jobs/{id} spells them back.
CLIPS = [
    {"start": "00:00:01.000", "end": "00:00:04.000"},
    {"start": "00:00:05.000", "end": "00:00:07.500"},
    {"start": "00:00:10.000", "end": "00:00:12.000"},
]


def batch(clips: Sequence[dict[str, str]] = CLIPS, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceType": "upload",
        "uploadKey": SAMPLE_UPLOAD_KEY,
        "clips": list(clips),
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def rows(db_url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchall()


def stored_counts(db_url: str) -> tuple[int, int, int]:
    """Jobs, job events and queue messages on record."""
    ((jobs, events, messages),) = rows(
        db_url,
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_events), "
        "(SELECT count(*) FROM clipper_queue.messages)",
    )
    return jobs, events, messages


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


async def test_a_batch_makes_one_ordinary_job_per_clip_in_one_transaction(
    client: httpx.AsyncClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[int] = []
    publish_many = QueueAdapter.publish_many

    async def counted(
        self: QueueAdapter, messages: Sequence[QueueMessage], **kwargs: Any
    ) -> list[uuid.UUID]:
        published.append(len(messages))
        return await publish_many(self, messages, **kwargs)

    monkeypatch.setattr(QueueAdapter, "publish_many", counted)
    response = await client.post("/api/jobs/batch", json=batch(priority="fast"))
    assert response.status_code == 202, response.text
    accepted = response.json()
    ids = [job["id"] for job in accepted["jobs"]]
    assert len(set(ids)) == 3
    assert {(job["status"], job["priority"]) for job in accepted["jobs"]} == {("queued", "fast")}
    assert [job["links"]["self"] for job in accepted["jobs"]] == [f"/api/jobs/{i}" for i in ids]
    assert response.headers["location"] == f"/api/jobs/{ids[0]}"
    assert published == [3]  # all of them in one publish_many

    stored = rows(
        db_url,
        "SELECT j.id::text, j.batch_id::text, j.start_ms, j.end_ms, j.xmin::text, "
        "m.xmin::text, m.group_key FROM jobs j JOIN clipper_queue.messages m ON m.job_id = j.id "
        "ORDER BY j.start_ms",
    )
    assert [row[0] for row in stored] == ids  # in the order of the clips
    assert {row[1] for row in stored} == {accepted["batchId"]}
    assert [row[2:4] for row in stored] == [(1000, 4000), (5000, 7500), (10_000, 12_000)]
    assert len({xmin for row in stored for xmin in row[4:6]}) == 1  # one transaction
    assert {row[6] for row in stored} == {"local"}  # the tenant is the queue group
    for job_id, clip in zip(ids, CLIPS, strict=True):
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        assert (job["start"], job["end"]) == (clip["start"], clip["end"])
        events = (await client.get(f"/api/jobs/{job_id}/events")).json()
        assert [event["type"] for event in events] == ["created"]


@pytest.mark.parametrize(
    ("clips", "field", "code"),
    [
        (
            [*CLIPS[:2], {"start": "00:00:10", "end": "00:00:09"}],
            "clips[2].end",
            "VALIDATION_FAILED",
        ),
        ([*CLIPS[:2], {"start": "00:00:10", "end": "00:05:00"}], "clips[2].end", "CLIP_TOO_LONG"),
        (
            [*CLIPS[:2], {"start": "00:00:10", "end": "00:00:75"}],
            "clips[2].end",
            "VALIDATION_FAILED",
        ),
        ([*CLIPS[:2], {"start": "00:00:10"}], "clips[2].end", "VALIDATION_FAILED"),
        ([*CLIPS[:2], {**CLIPS[2], "speed": "2x"}], "clips[2].speed", "VALIDATION_FAILED"),
    ],
)
async def test_one_invalid_clip_is_named_and_no_job_is_made(
    client: httpx.AsyncClient, db_url: str, clips: list[dict[str, str]], field: str, code: str
) -> None:
    response = await client.post("/api/jobs/batch", json=batch(clips))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == (code, field)
    assert error["message"].startswith(f"{field}: ")
    assert stored_counts(db_url) == (0, 0, 0)


async def test_a_failure_while_storing_the_batch_leaves_none_of_it(
    client: httpx.AsyncClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(self: QueueAdapter, *args: Any, **kwargs: Any) -> list[uuid.UUID]:
        raise psycopg.OperationalError("the server closed the connection")

    # After every job and event of the batch is inserted: they must all roll back.
    monkeypatch.setattr(QueueAdapter, "publish_many", unreachable)
    response = await client.post("/api/jobs/batch", json=batch())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "UNAVAILABLE"
    assert stored_counts(db_url) == (0, 0, 0)


async def test_a_batch_has_one_to_fifty_clips(client: httpx.AsyncClient, db_url: str) -> None:
    one_second = [
        {"start": f"00:{n // 60:02}:{n % 60:02}", "end": f"00:{n // 60:02}:{n % 60:02}.900"}
        for n in range(51)
    ]
    for clips in (one_second, []):
        refused = await client.post("/api/jobs/batch", json=batch(clips))
        assert refused.status_code == 422, len(clips)
        assert refused.json()["error"]["details"][0]["field"] == "clips"
    assert stored_counts(db_url) == (0, 0, 0)
    accepted = await client.post("/api/jobs/batch", json=batch(one_second[:50]))
    assert accepted.status_code == 202, accepted.text
    assert len(accepted.json()["jobs"]) == 50
    assert stored_counts(db_url) == (50, 50, 50)


async def test_the_same_idempotency_key_returns_the_same_batch(
    client: httpx.AsyncClient, db_url: str
) -> None:
    headers = {"Idempotency-Key": "highlights-7"}
    first = await client.post("/api/jobs/batch", json=batch(), headers=headers)
    again = await client.post("/api/jobs/batch", json=batch(), headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json() == first.json()  # the batch id and every job, in order
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    changed = [CLIPS[0], CLIPS[1], {**CLIPS[2], "end": "00:00:13.000"}]
    for other in (batch(changed), batch(CLIPS[:2]), batch([*CLIPS, CLIPS[0]])):
        conflict = await client.post("/api/jobs/batch", json=other, headers=headers)
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert stored_counts(db_url)[0] == 3
    # A batch's jobs hold its key as `<key>#<n>`: a single job holding one is another request.
    single = {"sourceType": "upload", "uploadKey": SAMPLE_UPLOAD_KEY, **CLIPS[0]}
    taken = await client.post("/api/jobs", json=single, headers={"Idempotency-Key": "clips#1"})
    assert taken.status_code == 202, taken.text
    clash = await client.post("/api/jobs/batch", json=batch(), headers={"Idempotency-Key": "clips"})
    assert clash.status_code == 409, clash.text
    assert stored_counts(db_url)[0] == 4  # none of the clashing batch's jobs

    burst = await asyncio.gather(
        *(
            client.post("/api/jobs/batch", json=batch(), headers={"Idempotency-Key": "burst"})
            for _ in range(10)
        )
    )
    assert {response.status_code for response in burst} == {202}
    assert len({response.json()["batchId"] for response in burst}) == 1
    assert stored_counts(db_url) == (7, 7, 7)


async def test_a_tenant_cannot_batch_from_another_tenants_upload(
    make_client: ApiFactory, db_url: str
) -> None:
    a_token, b_token = await create_key(db_url), await create_key(db_url)
    await own_sample_upload(db_url, a_token)
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    theirs = await client.post("/api/jobs/batch", json=batch(), headers={"X-API-Key": b_token})
    assert theirs.status_code == 422
    assert theirs.json()["error"]["details"] == [
        {"field": "uploadKey", "message": "no upload has this key"}
    ]
    assert stored_counts(db_url) == (0, 0, 0)
    mine = await client.post("/api/jobs/batch", json=batch(), headers={"X-API-Key": a_token})
    assert mine.status_code == 202, mine.text
    job = mine.json()["jobs"][0]["links"]["self"]
    assert (await client.get(job, headers={"X-API-Key": b_token})).status_code == 404
    assert (await client.get(job, headers={"X-API-Key": a_token})).status_code == 200
    assert rows(db_url, "SELECT DISTINCT tenant_id FROM jobs") == [(key_id(a_token),)]


async def _finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def finished() -> bool:
        status = (await client.get(f"/api/jobs/{job_id}")).json()["status"]
        return status in ("done", "failed")

    await wait_for(finished, timeout=60, interval=0.1, message=f"job {job_id} to finish")
    job: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}")).json()
    return job


async def test_a_url_batch_fetches_its_media_once_for_all_its_jobs(
    make_client: ApiFactory,
    db_url: str,
    data_dir: Path,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = MediaServer(make_video(tmp_path / "talk.mp4", seconds=20))
    allow = {"enable_ytdlp": True, "allowlist_hosts": "127.0.0.1"}
    # Concurrency 4: the batch's 3 jobs run at once, so they race for the one fetch. Range reads
    # off: the single job then downloads its source as the batch's fetch does.
    settings = settings_for(data_dir=data_dir, source_range_reads=False, **allow)
    worker = Worker(settings, db_url, WorkerOptions(concurrency=4))
    await worker.start()
    try:
        client: httpx.AsyncClient = await make_client(**allow)
        source = {"sourceType": "youtube", "youtubeUrl": server.url}
        single = await client.post("/api/jobs", json={**source, **CLIPS[0]})
        assert (await _finished(client, single.json()["id"]))["status"] == "done"
        one_fetch, server.gets = server.gets, 0  # what fetching the media once takes
        accepted = await client.post("/api/jobs/batch", json={**source, "clips": CLIPS})
        assert accepted.status_code == 202, accepted.text
        jobs = [await _finished(client, job["id"]) for job in accepted.json()["jobs"]]
    finally:
        await worker.stop(StopSignals())
        server.http.shutdown()
        server.http.server_close()
    assert one_fetch > 0
    assert server.gets == one_fetch
    assert [job["status"] for job in jobs] == ["done"] * 3, jobs
    for job, clip in zip(jobs, CLIPS, strict=True):
        link = (await client.get(f"/api/jobs/{job['id']}/result")).json()["video"]["url"]
        saved = tmp_path / f"{job['id']}.mp4"
        saved.write_bytes((await client.get(httpx.URL(link))).content)
        expected = _ms(clip["end"]) - _ms(clip["start"])
        assert abs((await probe(saved)).duration_ms - expected) <= DURATION_TOLERANCE_MS

    batch_id = uuid.UUID(accepted.json()["batchId"])
    media = LocalStorage(data_dir).path(batch_media_key(batch_id))
    assert media.is_file()
    assert not list(media.parent.glob("*.part"))
    assert await cleanup_batch_media(sessions, LocalStorage(data_dir)) == 1  # all done
    assert not media.parent.exists()


def _ms(timecode: str) -> int:
    hours, minutes, seconds = timecode.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


async def test_retention_keeps_a_batchs_media_while_it_may_be_needed(
    client: httpx.AsyncClient,
    db_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    storage = LocalStorage(data_dir)
    accepted = (await client.post("/api/jobs/batch", json=batch())).json()
    batch_id = uuid.UUID(accepted["batchId"])
    media = storage.path(batch_media_key(batch_id))
    media.parent.mkdir(parents=True)
    media.write_bytes(b"fetched media")
    assert await cleanup_batch_media(sessions, storage) == 0  # its jobs are queued
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE jobs SET status = 'done' WHERE id = %s", (accepted["jobs"][0]["id"],))
        conn.execute(
            "UPDATE jobs SET status = 'processing' WHERE id = %s", (accepted["jobs"][1]["id"],)
        )
    assert await cleanup_batch_media(sessions, storage) == 0  # one is still processing
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE jobs SET status = 'failed'")
    async with sessions.begin() as session:  # a worker looking whether the media is there
        assert await JobRepository(session).try_lock(media_lock_name(batch_id))
        assert await cleanup_batch_media(sessions, storage) == 0
        assert media.is_file()
    assert await cleanup_batch_media(sessions, storage) == 1
    assert not media.parent.exists()
