"""Per-key limits: a request rate for creating uploads and jobs, a cap on queued +
processing jobs and on stored upload bytes; each over-limit answer is a 429 with Retry-After
and a code naming the limit. The state lives in PostgreSQL, so two API processes share it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from clipper.db.repositories import ApiKeyRepository
from clipper.db.session import create_engine, session_factory
from clipper.services.webhooks import webhook_secret
from tests.api.conftest import ApiFactory, clip, create_key, key_id, own_sample_upload
from tests.cli_helpers import clipper, start_clipper_up
from tests.media_files import make_video


async def _limit(db_url: str, token: str, **values: int) -> None:
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine).begin() as session:
        assert await ApiKeyRepository(session).set_limits(key_id(token), **values)
    await engine.dispose()


def _assert_limited(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    assert int(response.headers["retry-after"]) >= 1


async def test_the_rate_counts_creating_requests_and_answers_429_with_retry_after(
    make_client: ApiFactory, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url)
    await own_sample_upload(db_url, token)
    await _limit(db_url, token, rate_per_minute=3, max_active_jobs=100)
    headers = {"X-API-Key": token}
    accepted = [await client.post("/api/jobs", json=clip(), headers=headers) for _ in range(3)]
    assert [response.status_code for response in accepted] == [202, 202, 202]
    limited = await client.post("/api/jobs", json=clip(), headers=headers)
    _assert_limited(limited, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) <= 20  # one request's worth: 60 s / 3
    # Reading is not limited.
    assert (await client.get("/api/jobs", headers=headers)).status_code == 200
    # Another key has its own budget.
    other = await create_key(db_url)
    await own_sample_upload(db_url, other)
    assert (
        await client.post("/api/jobs", json=clip(), headers={"X-API-Key": other})
    ).status_code == 202


async def test_the_active_jobs_cap_frees_as_jobs_end(make_client: ApiFactory, db_url: str) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url)
    await own_sample_upload(db_url, token)
    await _limit(db_url, token, max_active_jobs=2)
    headers = {"X-API-Key": token}
    first = (await client.post("/api/jobs", json=clip(), headers=headers)).json()["id"]
    assert (await client.post("/api/jobs", json=clip(), headers=headers)).status_code == 202
    _assert_limited(
        await client.post("/api/jobs", json=clip(), headers=headers), "ACTIVE_JOBS_LIMIT"
    )
    assert (await client.post(f"/api/jobs/{first}/cancel", headers=headers)).status_code == 200
    assert (await client.post("/api/jobs", json=clip(), headers=headers)).status_code == 202


async def test_admin_keys_and_the_local_service_are_not_limited(
    make_client: ApiFactory, db_url: str
) -> None:
    local: httpx.AsyncClient = await make_client(key_max_active_jobs=1, key_rate_per_minute=1)
    statuses = [(await local.post("/api/jobs", json=clip())).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    keyed: httpx.AsyncClient = await make_client(enable_api_keys=True, key_max_active_jobs=1)
    admin = await create_key(db_url, admin=True)
    headers = {"X-API-Key": admin}
    statuses = [
        (await keyed.post("/api/jobs", json=clip(), headers=headers)).status_code for _ in range(2)
    ]
    assert statuses == [202, 202]


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("limits") / "s.mp4", seconds=2).read_bytes()


async def test_the_upload_quota_refuses_what_would_not_fit_and_keeps_nothing_of_it(
    make_client: ApiFactory, db_url: str, data_dir: Path, small_video: bytes
) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url)
    await _limit(db_url, token, max_upload_bytes=len(small_video) * 3 // 2)
    headers = {"X-API-Key": token}
    files = {"file": ("s.mp4", small_video)}
    assert (await client.post("/api/uploads", files=files, headers=headers)).status_code == 201
    stored = _stored(data_dir)
    _assert_limited(await client.post("/api/uploads", files=files, headers=headers), "UPLOAD_QUOTA")
    assert _stored(data_dir) == stored


def _stored(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_two_api_processes_share_the_limits(db_url: str, tmp_path: Path) -> None:
    token = asyncio.run(create_key(db_url))
    asyncio.run(_limit(db_url, token, rate_per_minute=4, max_active_jobs=100))
    video = make_video(tmp_path / "s.mp4", seconds=2)
    data_dir = str(tmp_path / "data")
    apis = [
        start_clipper_up(db_url, command="api", ENABLE_API_KEYS="true", DATA_DIR=data_dir)
        for _ in range(2)
    ]
    try:
        statuses = []
        for index in range(6):  # alternating between the two processes
            _, address = apis[index % 2]
            with httpx.Client(base_url=address, timeout=30) as api, video.open("rb") as file:
                response = api.post(
                    "/api/uploads", files={"file": ("s.mp4", file)}, headers={"X-API-Key": token}
                )
            statuses.append(response.status_code)
        assert statuses == [201, 201, 201, 201, 429, 429]
    finally:
        for process, _ in apis:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


def test_keys_create_and_update_set_the_limits(db_url: str) -> None:
    created = clipper(
        "keys",
        "create",
        "--name",
        "acme",
        "--rate",
        "2/s",
        "--max-active",
        "7",
        "--max-upload-mb",
        "1.5",
        DATABASE_URL=db_url,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    updated = clipper("keys", "update", key_id(token), "--max-active", "9", DATABASE_URL=db_url)
    assert updated.returncode == 0, updated.stderr
    listed = clipper("keys", "list", DATABASE_URL=db_url, COLUMNS="200").stdout
    row = next(line for line in listed.splitlines() if key_id(token) in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert {"120", "9", "1.5"} <= set(cells)  # rate per minute, active jobs, upload MB
    refused = clipper("keys", "update", key_id(token), "--rate", "7/h", DATABASE_URL=db_url)
    assert refused.returncode != 0
    assert "whole number per minute" in refused.stderr


def test_keys_print_their_webhook_secret_once_and_rotate_it(db_url: str) -> None:
    signing = "s" * 32
    created = clipper("keys", "create", "--name", "hooks", DATABASE_URL=db_url, SIGNING_KEY=signing)
    assert created.returncode == 0, created.stderr
    key = key_id(created.stdout.strip())
    first = webhook_secret(b"s" * 32, key, 1)
    assert f"webhook secret: {first}" in created.stderr
    shown = clipper("keys", "webhook-secret", key, DATABASE_URL=db_url, SIGNING_KEY=signing)
    assert shown.stdout.strip() == first
    rotated = clipper(
        "keys", "webhook-secret", key, "--rotate", DATABASE_URL=db_url, SIGNING_KEY=signing
    ).stdout.strip()
    assert rotated == webhook_secret(b"s" * 32, key, 2) != first
    unsigned = clipper("keys", "webhook-secret", key, DATABASE_URL=db_url)
    assert unsigned.returncode != 0
    assert "SIGNING_KEY" in unsigned.stderr
