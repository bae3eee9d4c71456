"""Two tenants over HTTP: each API key reaches only its own uploads and jobs, exactly as if
the other's did not exist; an admin key reaches everything. Every test here fails when the
tenant filter it covers is removed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    SAMPLE_UPLOAD_KEY,
    ApiFactory,
    clip,
    create_key,
    key_id,
    own_sample_upload,
    own_upload,
)
from tests.media_files import make_video


class Tenants:
    def __init__(self, client: httpx.AsyncClient, a: str, b: str, admin: str) -> None:
        self.client = client
        self.keys = {"a": a, "b": b, "admin": admin}

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.keys[who], **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def job_of(self, who: str, **body: Any) -> str:
        response = await self.call(who, "POST", "/api/jobs", json=clip(**body))
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


@pytest.fixture(scope="module")
def media_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("tenancy") / "source.mp4", seconds=3).read_bytes()


@pytest.fixture
async def tenants(make_client: ApiFactory, db_url: str) -> Tenants:
    a_token, b_token = await create_key(db_url), await create_key(db_url)
    admin = await create_key(db_url, admin=True)
    await own_sample_upload(db_url, a_token)  # the sample upload is A's
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    return Tenants(client, a_token, b_token, admin)


async def test_another_tenants_job_answers_like_an_unknown_one(tenants: Tenants) -> None:
    job = await tenants.job_of("a")
    unknown = str(uuid.uuid4())
    for suffix in ("", "/events", "/result"):
        theirs = await tenants.call("b", "GET", f"/api/jobs/{job}{suffix}")
        missing = await tenants.call("b", "GET", f"/api/jobs/{unknown}{suffix}")
        assert theirs.status_code == missing.status_code == 404, suffix
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]
    assert (await tenants.call("a", "GET", f"/api/jobs/{job}")).status_code == 200
    assert (await tenants.call("a", "GET", f"/api/jobs/{job}/events")).status_code == 200


async def test_a_tenant_lists_only_its_own_jobs_and_an_admin_lists_all(
    tenants: Tenants, db_url: str
) -> None:
    mine = await tenants.job_of("a")
    await own_sample_upload(db_url, tenants.keys["b"])  # now B's: B may make a job of it
    other = await tenants.job_of("b")
    listed = {
        who: [item["id"] for item in (await tenants.call(who, "GET", "/api/jobs")).json()["items"]]
        for who in ("a", "b", "admin")
    }
    assert listed["a"] == [mine]
    assert listed["b"] == [other]
    assert set(listed["admin"]) == {mine, other}
    admin_read = await tenants.call("admin", "GET", f"/api/jobs/{mine}")
    assert admin_read.status_code == 200


async def test_a_job_cannot_be_made_from_another_tenants_upload(tenants: Tenants) -> None:
    theirs = await tenants.call("b", "POST", "/api/jobs", json=clip())
    never = await tenants.call("b", "POST", "/api/jobs", json=clip(uploadKey="up_" + "7" * 32))
    assert theirs.status_code == never.status_code == 422
    assert theirs.json()["error"]["details"] == never.json()["error"]["details"]
    assert "uploadKey" in theirs.text
    assert SAMPLE_UPLOAD_KEY not in theirs.text


async def test_idempotency_keys_belong_to_one_tenant(
    tenants: Tenants, db_url: str, data_dir: Path
) -> None:
    b_upload = "up_" + "6" * 32
    await own_upload(db_url, tenants.keys["b"], b_upload, data_dir)
    # One Idempotency-Key, two tenants: two jobs, and neither gets the other's back.
    header = {"Idempotency-Key": "order-17"}
    first = await tenants.call("a", "POST", "/api/jobs", json=clip(), headers=header)
    second = await tenants.call(
        "b", "POST", "/api/jobs", json=clip(uploadKey=b_upload), headers=header
    )
    again = await tenants.call("a", "POST", "/api/jobs", json=clip(), headers=header)
    assert first.status_code == second.status_code == again.status_code == 202
    assert second.json()["id"] != first.json()["id"]
    assert again.json()["id"] == first.json()["id"]
    assert "idempotent-replayed" not in second.headers


async def test_uploads_are_recorded_with_their_owner(
    tenants: Tenants, db_url: str, media_file: bytes
) -> None:
    uploaded = await tenants.call(
        "b", "POST", "/api/uploads", files={"file": ("clip.mp4", media_file, "video/mp4")}
    )
    assert uploaded.status_code == 201, uploaded.text
    key = uploaded.json()["uploadKey"]
    body = clip(uploadKey=key, start="00:00:01", end="00:00:02")  # within its 3 s
    assert (await tenants.call("a", "POST", "/api/jobs", json=body)).status_code == 422
    assert (await tenants.call("b", "POST", "/api/jobs", json=body)).status_code == 202
    assert (await tenants.call("admin", "POST", "/api/jobs", json=body)).status_code == 202
    assert key_id(tenants.keys["b"]) != key_id(tenants.keys["a"])


async def test_another_tenants_job_cannot_be_cancelled(tenants: Tenants) -> None:
    job = await tenants.job_of("a")
    theirs = await tenants.call("b", "POST", f"/api/jobs/{job}/cancel")
    missing = await tenants.call("b", "POST", f"/api/jobs/{uuid.uuid4()}/cancel")
    assert theirs.status_code == missing.status_code == 404
    assert (await tenants.call("a", "GET", f"/api/jobs/{job}")).json()["status"] == "queued"
    assert (await tenants.call("admin", "POST", f"/api/jobs/{job}/cancel")).status_code == 200
