"""POST /api/jobs with a callbackUrl: it passes the SSRF guard (as URL sources do) or the job
is refused with a 422 naming callbackUrl; an accepted one is stored with the job and is part
of the request an Idempotency-Key stands for."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.api.conftest import ApiFactory, clip


@pytest.mark.parametrize(
    ("callback", "reason"),
    [
        ("http://10.1.2.3/hooks/clips", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://127.0.0.1:9/hook", "loopback"),
    ],
)
async def test_a_callback_url_to_a_private_address_is_refused(
    client: httpx.AsyncClient, db_url: str, callback: str, reason: str
) -> None:
    refused = await client.post("/api/jobs", json=clip(callbackUrl=callback))
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["error"]["details"]
    assert detail["field"] == "callbackUrl"
    assert reason in detail["message"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        count = await (await conn.execute("SELECT count(*) FROM jobs")).fetchone()
    assert count == (0,)


async def test_an_allowed_callback_url_is_stored_with_the_job(
    make_client: ApiFactory, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client(allowlist_hosts="127.0.0.1")
    callback = "http://127.0.0.1:9/hooks/clips"
    accepted = await client.post("/api/jobs", json=clip(callbackUrl=callback))
    assert accepted.status_code == 202, accepted.text
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        stored = await (
            await conn.execute(
                "SELECT callback_url FROM jobs WHERE id = %s", (accepted.json()["id"],)
            )
        ).fetchone()
    assert stored == (callback,)


async def test_an_idempotency_key_reused_with_another_callback_url_is_a_conflict(
    make_client: ApiFactory,
) -> None:
    client: httpx.AsyncClient = await make_client(allowlist_hosts="127.0.0.1")
    headers = {"Idempotency-Key": "order-7"}
    first = await client.post(
        "/api/jobs", json=clip(callbackUrl="http://127.0.0.1:9/a"), headers=headers
    )
    assert first.status_code == 202, first.text
    again = await client.post(
        "/api/jobs", json=clip(callbackUrl="http://127.0.0.1:9/a"), headers=headers
    )
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(
        "/api/jobs", json=clip(callbackUrl="http://127.0.0.1:9/b"), headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
