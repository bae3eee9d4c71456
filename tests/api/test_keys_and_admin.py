"""API keys on and off; admin-only routes; keys never reach the logs."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest

from clipper.api import auth
from clipper.db.repositories import ApiKeyRepository
from clipper.db.session import create_engine, session_factory
from clipper.services import keys as keys_service
from tests.api.conftest import ApiFactory, clip, create_key, own_sample_upload
from tests.helpers import wait_for


async def _revoke(db_url: str, token: str) -> None:
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine).begin() as session:
        assert await ApiKeyRepository(session).revoke(token.split("_")[1])
    await engine.dispose()


async def test_keys_off_lets_local_callers_in(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/jobs", json=clip())).status_code == 202
    assert (await client.get("/api/dlq")).status_code == 200


async def test_keys_on_require_a_valid_unrevoked_key(
    make_client: ApiFactory,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.0)  # see revocation at once
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url, admin=False)
    await own_sample_upload(db_url, token)
    with caplog.at_level(logging.DEBUG):
        missing = await client.post("/api/jobs", json=clip())
        wrong = await client.post(
            "/api/jobs", json=clip(), headers={"Authorization": f"Bearer {token[:-2]}xx"}
        )
        bearer = await client.post(
            "/api/jobs", json=clip(), headers={"Authorization": f"Bearer {token}"}
        )
        header = await client.get("/api/jobs", headers={"X-API-Key": token})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert bearer.status_code == 202
    assert header.status_code == 200
    assert token not in caplog.text
    assert token[-20:] not in caplog.text
    await _revoke(db_url, token)
    revoked = await client.get("/api/jobs", headers={"X-API-Key": token})
    assert revoked.status_code == 401


async def test_admin_routes_need_an_admin_key(make_client: ApiFactory, db_url: str) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    user = await create_key(db_url, admin=False)
    admin = await create_key(db_url, admin=True)
    forbidden = await client.get("/api/dlq", headers={"X-API-Key": user})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"
    assert (await client.get("/api/dlq", headers={"X-API-Key": admin})).status_code == 200


async def test_requeue_puts_a_failed_job_back(client: httpx.AsyncClient, db_url: str) -> None:
    import psycopg

    job_id = (await client.post("/api/jobs", json=clip())).json()["id"]
    early = await client.post(f"/api/dlq/{job_id}/requeue")
    assert early.status_code == 409  # still queued
    with psycopg.connect(db_url) as conn:  # as the worker's dead-letter hook leaves it
        conn.execute(
            "UPDATE jobs SET status = 'failed', error_code = 'BOOM' WHERE id = %s", (job_id,)
        )
        conn.execute(
            "INSERT INTO dlq_jobs (job_id, reason, payload) VALUES (%s, 'BOOM', '{}')", (job_id,)
        )
        conn.execute(
            "UPDATE clipper_queue.messages SET state = 'failed', finished_at = now() "
            "WHERE job_id = %s",
            (job_id,),
        )
    letters = (await client.get("/api/dlq")).json()
    assert [letter["jobId"] for letter in letters] == [job_id]
    requeued = await client.post(f"/api/dlq/{job_id}/requeue")
    assert requeued.status_code == 202, requeued.text
    assert (requeued.json()["status"], requeued.json()["error"]) == ("queued", None)
    events = [e["type"] for e in (await client.get(f"/api/jobs/{job_id}/events")).json()]
    assert events == ["created", "requeued"]
    assert (await client.get("/api/dlq")).json() == []
    with psycopg.connect(db_url) as conn:
        state = conn.execute(
            "SELECT state, attempts FROM clipper_queue.messages "
            "WHERE queue = 'clips' AND job_id = %s",
            (job_id,),
        ).fetchone()
    assert state == ("ready", 0)


async def test_wrong_secrets_are_checked_off_the_event_loop_and_refused_from_cache(
    make_client: ApiFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of wrong secrets for a known key id used to run scrypt on the event loop,
    slowing every other request (/healthz from 1.8 ms to ~500 ms): the hash now runs in a
    thread, and a token refused once is refused again without hashing."""
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url)
    hashing, release, hashed = threading.Event(), threading.Event(), threading.Event()
    checks = 0

    def slow_verify(secret: str, stored: str) -> bool:
        nonlocal checks
        checks += 1
        hashing.set()
        release.wait(timeout=5)
        hashed.set()
        return False

    monkeypatch.setattr(keys_service, "verify_secret", slow_verify)
    wrong = {"X-API-Key": token[:-2] + "xx"}
    attempt = asyncio.create_task(client.get("/api/jobs", headers=wrong))
    await wait_for(hashing.is_set, message="a verification under way")
    # While that hash runs, the API still answers (on the event loop, it could not).
    assert (await client.get("/healthz")).status_code == 200
    assert not hashed.is_set()
    release.set()
    assert (await attempt).status_code == 401
    assert (await client.get("/api/jobs", headers=wrong)).status_code == 401
    assert checks == 1  # the second refusal came from the cache
