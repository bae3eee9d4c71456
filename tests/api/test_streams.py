"""The live streams (Server-Sent Events fed by LISTEN/NOTIFY): a job's changes pushed as they
commit in another transaction, the end on a terminal status, tenancy, keepalives,
Last-Event-ID, the overview stream, and the hub's reconnect after its connection is killed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from clipper.api import sse
from clipper.api.routes import admin
from clipper.db.repositories import JobRepository
from clipper.db.session import create_engine, session_factory
from tests.api.conftest import ApiFactory, clip, create_key, own_sample_upload
from tests.api.streaming import ServerEvent, next_event, sse_events
from tests.helpers import wait_for


async def _change(db_url: str, job_id: str, *steps: str) -> None:
    """Move the job as a worker does, each step its own transaction (another connection)."""
    engine = create_engine(db_url, pool_size=1)
    try:
        for step in steps:
            async with session_factory(engine).begin() as session:
                jobs = JobRepository(session)
                if step == "start":
                    assert await jobs.start_attempt(uuid.UUID(job_id), 1) is not None
                elif step.startswith("progress"):
                    percent = int(step.split(":")[1])
                    assert await jobs.record_progress(uuid.UUID(job_id), 1, percent, "cut")
                elif step == "done":
                    assert await jobs.complete(
                        uuid.UUID(job_id), 1, "results/x/clip.mp4", None, timedelta(hours=1)
                    )
    finally:
        await engine.dispose()


def _job(event: ServerEvent) -> dict[str, Any]:
    assert event.event == "job", event
    data: dict[str, Any] = json.loads(event.data)
    return data


async def test_a_jobs_changes_are_pushed_until_it_ends(
    make_client: ApiFactory, db_url: str
) -> None:
    client = await make_client(streaming=True)
    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    async with client.stream("GET", f"/api/jobs/{job_id}/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        first = await next_event(events)
        assert _job(first)["status"] == "queued"
        assert _job(first) == (await client.get(f"/api/jobs/{job_id}")).json()
        await _change(db_url, job_id, "start")
        processing = await next_event(events)
        assert _job(processing)["status"] == "processing"
        assert int(processing.id or 0) > int(first.id or 0)  # the latest event's number
        await _change(db_url, job_id, "progress:40")
        assert _job(await next_event(events))["progress"] == 40
        await _change(db_url, job_id, "done")
        done = await next_event(events)
        assert _job(done)["status"] == "done"
        # Terminal: the server ends the stream.
        assert [event async for event in events] == []


async def test_last_event_id_resumes_after_what_the_client_has(
    make_client: ApiFactory, db_url: str
) -> None:
    client = await make_client(streaming=True)
    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    async with client.stream("GET", f"/api/jobs/{job_id}/stream") as response:
        seen = (await next_event(sse_events(response))).id
    assert seen is not None
    path = f"/api/jobs/{job_id}/stream"
    async with client.stream("GET", path, headers={"Last-Event-ID": seen}) as response:
        events = sse_events(response)
        await _change(db_url, job_id, "start")
        # Nothing new at first: the next event is the change, not the state already held.
        resumed = await next_event(events)
        assert _job(resumed)["status"] == "processing"
        assert int(resumed.id or 0) > int(seen)


async def test_another_tenants_job_stream_is_not_found(
    make_client: ApiFactory, db_url: str
) -> None:
    owner, other = await create_key(db_url), await create_key(db_url)
    await own_sample_upload(db_url, owner)
    client = await make_client(streaming=True, enable_api_keys=True)
    created = await client.post("/api/jobs", json=clip(), headers={"X-API-Key": owner})
    path = f"/api/jobs/{created.json()['id']}/stream"
    async with client.stream("GET", path, headers={"X-API-Key": other}) as response:
        assert response.status_code == 404
        await response.aread()
        assert response.json()["error"]["code"] == "NOT_FOUND"
    async with client.stream("GET", path) as response:
        assert response.status_code == 401
        await response.aread()
    async with client.stream("GET", path, headers={"X-API-Key": owner}) as response:
        assert response.status_code == 200
        assert _job(await next_event(sse_events(response)))["id"] == created.json()["id"]


async def test_an_idle_stream_sends_keepalive_comments(
    make_client: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.2)
    client = await make_client(streaming=True)
    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    async with client.stream("GET", f"/api/jobs/{job_id}/stream") as response:
        events = sse_events(response)
        assert (await next_event(events)).event == "job"
        keepalive = await next_event(events, timeout=5)
        assert (keepalive.event, keepalive.comments) == (None, ["keepalive"])


async def test_the_overview_stream_pushes_when_a_job_changes(
    make_client: ApiFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No periodic event within the test: whatever comes next was pushed by the change.
    monkeypatch.setattr(admin, "OVERVIEW_EVERY_SECONDS", 600.0)
    client = await make_client(streaming=True)
    async with client.stream("GET", "/api/admin/overview/stream") as response:
        assert response.status_code == 200
        events = sse_events(response)
        first = await next_event(events)
        assert first.event == "overview"
        assert json.loads(first.data) == (await client.get("/api/admin/overview")).json()
        [clips] = [q for q in json.loads(first.data)["queues"] if q["queue"] == "clips"]
        assert clips["ready"] == 0
        await client.post("/api/jobs", json=clip())  # commits a `created` event: NOTIFY
        pushed = await next_event(events)
        [clips] = [q for q in json.loads(pushed.data)["queues"] if q["queue"] == "clips"]
        assert clips["ready"] == 1
        assert clips["priorities"] == [{"priority": 1, "ready": 1, "scheduled": 0, "active": 0}]


async def test_the_overview_stream_is_for_admins(make_client: ApiFactory, db_url: str) -> None:
    user = await create_key(db_url)
    client = await make_client(streaming=True, enable_api_keys=True)
    headers = {"X-API-Key": user}
    async with client.stream("GET", "/api/admin/overview/stream", headers=headers) as response:
        assert response.status_code == 403
        await response.aread()


async def _listener_pid(db_url: str) -> int | None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'clipper-live'"
            " AND datname = current_database()"
        )
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def test_the_hub_reconnects_after_its_connection_is_killed(
    make_client: ApiFactory, db_url: str
) -> None:
    client = await make_client(streaming=True)
    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    async with client.stream("GET", f"/api/jobs/{job_id}/stream") as response:
        events = sse_events(response)
        assert _job(await next_event(events))["status"] == "queued"
        killed = await _listener_pid(db_url)
        assert killed is not None
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (killed,))

        async def listening_again() -> bool:
            return (await _listener_pid(db_url)) not in (None, killed)

        await wait_for(listening_again, message="the hub listening on a new connection")
        await _change(db_url, job_id, "start")
        assert _job(await next_event(events))["status"] == "processing"
