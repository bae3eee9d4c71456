"""/api/jobs over HTTP: accept, read, events, list, idempotency, errors in one envelope."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg

from tests.api.conftest import ApiFactory, clip


async def test_create_answers_202_and_the_job_can_be_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/jobs",
        json=clip(priority="fast", start="00:01:05.250", end="00:01:30"),
        headers={"X-Request-Id": "req-42"},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["priority"] == "fast"
    assert "expiresAt" in accepted
    assert response.headers["location"] == f"/api/jobs/{accepted['id']}"
    assert response.headers["x-request-id"] == "req-42"
    job = (await client.get(accepted["links"]["self"])).json()
    assert (job["status"], job["start"], job["end"]) == ("queued", "00:01:05.250", "00:01:30.000")
    events = (await client.get(accepted["links"]["events"])).json()
    assert [event["type"] for event in events] == ["created"]


async def test_idempotency_key_replays_and_conflicts(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-7"}
    first = await client.post("/api/jobs", json=clip(), headers=headers)
    again = await client.post("/api/jobs", json=clip(), headers=headers)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/api/jobs", json=clip(end="00:00:40"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"


async def test_twenty_concurrent_identical_requests_make_one_job(
    client: httpx.AsyncClient, db_url: str
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/jobs", json=clip(), headers={"Idempotency-Key": "burst"})
            for _ in range(20)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    with psycopg.connect(db_url) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
        messages = conn.execute("SELECT count(*) FROM clipper_queue.messages").fetchone()
    assert jobs == (1,)
    assert messages == (1,)


async def test_unknown_expired_and_malformed_ids(client: httpx.AsyncClient, db_url: str) -> None:
    missing = await client.get(f"/api/jobs/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert missing.json()["error"]["correlationId"]
    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE jobs SET status = 'done', expires_at = now() - interval '1 hour' WHERE id = %s",
            (job_id,),
        )
    gone = await client.get(f"/api/jobs/{job_id}")
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "GONE"
    malformed = await client.get("/api/jobs/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["error"]["details"][0]["field"] == "path.job_id"


async def test_list_filters_by_status_and_pages_with_a_cursor(
    client: httpx.AsyncClient, db_url: str
) -> None:
    ids = [(await client.post("/api/jobs", json=clip())).json()["id"] for _ in range(5)]
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE jobs SET status = 'processing' WHERE id = %s", (ids[0],))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "queued", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/jobs", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids[1:]))  # newest first, each once, only queued
    bad = await client.get("/api/jobs", params={"cursor": "garbage"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "cursor"


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    await client.post("/api/jobs", json=clip())
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    text = (await client.get("/metrics")).text
    assert 'clipper_jobs{status="queued"} 1.0' in text
    assert "clipper_dlq_jobs 0.0" in text
    assert 'clipper_queue_published_total{queue="clips"} 1.0' in text
    assert 'clipper_http_requests_total{method="POST",route="/api/jobs",status="202"}' in text
    assert "clipper_queue_depth" in text


async def test_openapi_is_served(make_client: ApiFactory) -> None:
    client = await make_client()
    schema = (await client.get("/openapi.json")).json()
    assert "/api/jobs" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
