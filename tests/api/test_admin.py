"""The console's admin API: the queue's overview, the workers online, pause and resume,
dead letters grouped, requeued and discarded by code or all, and the jobs list's filters
(the tenant scope holding whatever they ask)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from clipper.settings import clipper_version
from clipper.worker.service import Worker
from tests.api.conftest import ApiFactory, clip, create_key, key_id, own_sample_upload
from tests.helpers import wait_for


def _dead_letter(db_url: str, job_id: str, code: str, message: str = "it broke") -> None:
    """As the worker's dead-letter hook leaves a job: failed, its record, its message done."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE jobs SET status = 'failed', error_code = %s WHERE id = %s", (code, job_id)
        )
        conn.execute(
            "INSERT INTO dlq_jobs (job_id, reason, payload) VALUES (%s, %s, %s)",
            (job_id, code, psycopg.types.json.Jsonb({"error": {"message": message}})),
        )
        conn.execute(
            "UPDATE clipper_queue.messages SET state = 'failed', finished_at = now() "
            "WHERE job_id = %s",
            (job_id,),
        )


async def _jobs(client: httpx.AsyncClient, count: int, **overrides: Any) -> list[str]:
    return [
        (await client.post("/api/jobs", json=clip(**overrides))).json()["id"] for _ in range(count)
    ]


def _queue(overview: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [queue for queue in overview["queues"] if queue["queue"] == name]
    assert isinstance(found, dict)
    return found


async def test_the_overview_counts_each_queue_and_its_priorities(
    client: httpx.AsyncClient, db_url: str
) -> None:
    await _jobs(client, 2, priority="fast")
    [failed] = await _jobs(client, 1)
    _dead_letter(db_url, failed, "BOOM")
    response = await client.get("/api/admin/overview")
    assert response.status_code == 200
    overview = response.json()
    assert [queue["queue"] for queue in overview["queues"]] == ["clips", "webhooks"]
    clips = _queue(overview, "clips")
    assert clips | {"oldestWaitingSeconds": 0} == {
        "queue": "clips",
        "paused": False,
        "ready": 2,
        "scheduled": 0,
        "active": 0,
        "failed": 1,
        "deadLettered": 1,
        "oldestWaitingSeconds": 0,
        "priorities": [{"priority": 0, "ready": 2, "scheduled": 0, "active": 0}],
    }
    assert clips["oldestWaitingSeconds"] >= 0
    assert _queue(overview, "webhooks")["ready"] == 0
    assert overview["minutes"] == []  # nothing claimed or finished by the queue yet


async def test_the_overview_minutes_come_from_the_stats_table(
    client: httpx.AsyncClient, db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO clipper_queue.stats (queue, minute, shard, completed, picked_up,"
            " pickup_ms_sum, pickup_ms_max) VALUES"
            " ('clips', date_trunc('minute', now()), 0, 3, 4, 1000, 700),"
            " ('clips', date_trunc('minute', now()), 1, 1, 1, 500, 500),"
            " ('clips', date_trunc('minute', now()) - interval '2 hours', 0, 9, 9, 9, 9)"
        )
    [minute] = (await client.get("/api/admin/overview")).json()["minutes"]
    assert minute["minute"].endswith("Z")
    assert minute | {"minute": None} == {
        "minute": None,
        "queue": "clips",
        "completed": 4,
        "failed": 0,
        "retried": 0,
        "deadLettered": 0,
        "cancelled": 0,
        "pickedUp": 5,
        "pickupAvgMs": 300.0,
        "pickupMaxMs": 700.0,
    }


async def test_the_workers_online_with_their_queues(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    async def registered() -> bool:
        return len((await client.get("/api/admin/workers")).json()) == 1

    await wait_for(registered, message="the worker's registration")
    [found] = (await client.get("/api/admin/workers")).json()
    assert found["id"] == str(worker.queue.registry.id)
    assert found["version"] == clipper_version()
    assert found["queues"] == ["clips", "clips.dlq", "webhooks"]
    assert found["running"] == []
    assert set(found) == {
        "id", "host", "pid", "version", "queues", "concurrency", "running", "startedAt",
        "heartbeatAt",
    }  # fmt: skip


async def test_pause_and_resume_a_queue(client: httpx.AsyncClient) -> None:
    paused = await client.post("/api/admin/queues/clips/pause")
    assert paused.status_code == 200
    assert paused.json() == {"queue": "clips", "paused": True}
    assert _queue((await client.get("/api/admin/overview")).json(), "clips")["paused"] is True
    resumed = await client.post("/api/admin/queues/clips/resume")
    assert resumed.json() == {"queue": "clips", "paused": False}
    assert _queue((await client.get("/api/admin/overview")).json(), "clips")["paused"] is False
    assert (await client.post("/api/admin/queues/webhooks/pause")).status_code == 200
    unknown = await client.post("/api/admin/queues/emails/pause")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NOT_FOUND"


async def test_the_admin_routes_need_an_admin_key(make_client: ApiFactory, db_url: str) -> None:
    user = await create_key(db_url)
    client = await make_client(enable_api_keys=True)
    for method, path in [
        ("GET", "/api/admin/overview"),
        ("GET", "/api/admin/workers"),
        ("POST", "/api/admin/queues/clips/pause"),
        ("GET", "/api/dlq/groups"),
        ("POST", "/api/dlq/discard"),
        ("GET", f"/api/dlq/{uuid.uuid4()}"),
    ]:
        assert (await client.request(method, path)).status_code == 401, path
        forbidden = await client.request(method, path, headers={"X-API-Key": user})
        assert forbidden.status_code == 403, path


async def test_dead_letters_grouped_by_code_with_a_sample(
    client: httpx.AsyncClient, db_url: str
) -> None:
    boom = await _jobs(client, 2)
    [other] = await _jobs(client, 1)
    for job_id in boom:
        _dead_letter(db_url, job_id, "BOOM", f"boom {job_id}")
    _dead_letter(db_url, other, "FETCH_FAILED")
    groups = (await client.get("/api/dlq/groups")).json()
    assert [(group["code"], group["count"]) for group in groups] == [
        ("BOOM", 2),
        ("FETCH_FAILED", 1),
    ]
    sample = groups[0]["sample"]
    assert set(sample) == {"jobId", "message", "createdAt"}
    assert sample["message"] == f"boom {sample['jobId']}"
    assert sample["jobId"] in boom


async def test_requeue_dead_letters_by_code_then_all(
    client: httpx.AsyncClient, db_url: str
) -> None:
    boom = await _jobs(client, 2)
    [other] = await _jobs(client, 1)
    for job_id in boom:
        _dead_letter(db_url, job_id, "BOOM")
    _dead_letter(db_url, other, "FETCH_FAILED")
    requeued = await client.post("/api/dlq/requeue", json={"code": "BOOM"})
    assert requeued.status_code == 200
    assert requeued.json() == {"requeued": 2}
    for job_id in boom:
        assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "queued"
    assert [g["code"] for g in (await client.get("/api/dlq/groups")).json()] == ["FETCH_FAILED"]
    assert (await client.post("/api/dlq/requeue", json={"all": True})).json() == {"requeued": 1}
    assert (await client.get("/api/dlq/groups")).json() == []
    for bad in ({}, {"code": "BOOM", "all": True}, {"all": False}, {"codes": "BOOM"}):
        refused = await client.post("/api/dlq/requeue", json=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_discard_dead_letters_one_by_code_and_all(
    client: httpx.AsyncClient, db_url: str
) -> None:
    jobs = await _jobs(client, 4)
    for job_id, code in zip(jobs, ["A", "A", "B", "C"], strict=True):
        _dead_letter(db_url, job_id, code)
    one = await client.post(f"/api/dlq/{jobs[3]}/discard")
    assert one.json() == {"discarded": 1}
    assert (await client.post(f"/api/dlq/{jobs[3]}/discard")).status_code == 404
    # The job stays failed: only its dead letter went.
    assert (await client.get(f"/api/jobs/{jobs[3]}")).json()["status"] == "failed"
    assert (await client.post("/api/dlq/discard", json={"code": "A"})).json() == {"discarded": 2}
    assert (await client.post("/api/dlq/discard", json={"all": True})).json() == {"discarded": 1}
    assert (await client.get("/api/dlq")).json() == []


async def test_one_dead_letter_with_its_error_and_traceback(
    client: httpx.AsyncClient, db_url: str
) -> None:
    [failed, running] = await _jobs(client, 2)
    _dead_letter(db_url, failed, "SUBTITLE_FONTS_MISSING", "no fonts")
    error = {
        "type": "SubtitleFontsMissingError",
        "message": "no fonts",
        "code": "SUBTITLE_FONTS_MISSING",
        "traceback": "Traceback (most recent call last):\n  ...\nSubtitleFontsMissingError",
    }
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE dlq_jobs SET payload = %s WHERE job_id = %s",
            (psycopg.types.json.Jsonb({"attempts": 3, "error": error}), failed),
        )
    response = await client.get(f"/api/dlq/{failed}")
    assert response.status_code == 200, response.text
    letter = response.json()
    assert set(letter) == {"jobId", "reason", "attempts", "error", "createdAt"}
    assert (letter["jobId"], letter["reason"], letter["attempts"]) == (
        failed,
        "SUBTITLE_FONTS_MISSING",
        3,
    )
    assert letter["error"] == error
    # Without a dead letter (running, unknown, or discarded): 404.
    for job_id in (running, str(uuid.uuid4())):
        missing = await client.get(f"/api/dlq/{job_id}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
    await client.post(f"/api/dlq/{failed}/discard")
    assert (await client.get(f"/api/dlq/{failed}")).status_code == 404
    assert (await client.get("/api/dlq/not-a-job")).status_code == 422


async def test_a_dead_letter_without_a_code_of_its_own_reports_the_jobs(
    client: httpx.AsyncClient, db_url: str
) -> None:
    [failed] = await _jobs(client, 1)
    _dead_letter(db_url, failed, "BOOM", "it broke")
    letter = (await client.get(f"/api/dlq/{failed}")).json()
    assert letter["error"] == {"type": "", "code": "BOOM", "message": "it broke", "traceback": ""}
    assert letter["attempts"] == 0


async def test_the_jobs_list_filters(client: httpx.AsyncClient, db_url: str) -> None:
    fast = await _jobs(client, 2, priority="fast")
    [bulk] = await _jobs(client, 1, priority="bulk")
    _dead_letter(db_url, bulk, "BOOM")

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["items"]]

    assert await ids(priority="fast") == fast[::-1]
    assert await ids(status="failed") == [bulk]
    assert await ids(status="queued", priority="bulk") == []
    assert await ids(keyId="local") == [bulk, *fast[::-1]]
    # With keys off every job is the local tenant's, and says so.
    listed = (await client.get("/api/jobs")).json()["items"]
    assert {job["keyId"] for job in listed} == {"local"}
    assert (await client.get(f"/api/jobs/{bulk}")).json()["keyId"] == "local"
    assert await ids(keyId="someone-else") == []
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await ids(createdAfter=later.isoformat()) == []
    assert len(await ids(createdBefore=later.isoformat())) == 3
    # Without an offset: UTC.
    assert len(await ids(createdBefore=later.replace(tzinfo=None).isoformat())) == 3
    assert (await client.get("/api/jobs", params={"createdAfter": "soon"})).status_code == 422
    assert (await client.get("/api/jobs", params={"priority": "urgent"})).status_code == 422


async def test_a_client_key_sees_only_its_own_jobs_whatever_key_id_says(
    make_client: ApiFactory, db_url: str
) -> None:
    mine, theirs, admin = (
        await create_key(db_url),
        await create_key(db_url),
        await create_key(db_url, admin=True),
    )
    client = await make_client(enable_api_keys=True)
    made = {}
    for token in (mine, theirs):
        await own_sample_upload(db_url, token)
        made[token] = await client.post("/api/jobs", json=clip(), headers={"X-API-Key": token})
        assert made[token].status_code == 202

    async def ids(token: str, **params: Any) -> list[str]:
        response = await client.get("/api/jobs", params=params, headers={"X-API-Key": token})
        return [job["id"] for job in response.json()["items"]]

    assert await ids(mine, keyId=key_id(theirs)) == []
    assert await ids(mine, keyId=key_id(mine)) == [made[mine].json()["id"]]
    assert await ids(mine) == [made[mine].json()["id"]]
    assert await ids(admin, keyId=key_id(theirs)) == [made[theirs].json()["id"]]

    async def owners(token: str) -> set[str]:
        response = await client.get("/api/jobs", headers={"X-API-Key": token})
        return {job["keyId"] for job in response.json()["items"]}

    # Whose each job is: an admin sees every key's; a client key only its own id.
    assert await owners(admin) >= {key_id(mine), key_id(theirs)}
    assert await owners(mine) == {key_id(mine)}
