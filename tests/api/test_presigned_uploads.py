"""Direct uploads: POST /api/uploads/presigned answers a presigned PUT, the client sends the file
to the object store itself (plain httpx, no Clipper in between), and POST
/api/uploads/{uploadKey}/complete checks and records it; then it is an upload like any other.
A real moto server and a real PostgreSQL, through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from clipper.db.session import create_engine, session_factory
from clipper.media.probe import probe
from clipper.services.retention import cleanup_old_uploads
from clipper.storage import storage_for
from clipper.worker.service import Worker
from tests.api.conftest import ApiFactory, create_key, settings_for
from tests.api.test_clips import _wait_finished
from tests.api.test_limits import _limit
from tests.api.test_s3_storage import _objects
from tests.media_files import make_video
from tests.moto_server import ACCESS_KEY, SECRET_KEY, S3Bucket

PRESIGN = "/api/uploads/presigned"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("direct") / "talk.mp4", seconds=10).read_bytes()


@pytest.fixture
async def api(make_client: ApiFactory, s3_bucket: S3Bucket) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url)
    return client


async def _presign(
    client: httpx.AsyncClient,
    size: int,
    content_type: str = "video/mp4",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = {"contentType": content_type, "sizeBytes": size, "filename": "talk.mp4"}
    answer = await client.post(PRESIGN, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert SECRET_KEY not in answer.text
    presigned: dict[str, Any] = answer.json()
    return presigned


async def _put(presigned: dict[str, Any], content: bytes, **headers: str) -> httpx.Response:
    """The client's own request to the store, with the answer's headers (and `headers` over
    them): no Clipper in between."""
    async with httpx.AsyncClient() as store:
        return await store.request(
            presigned["method"],
            presigned["url"],
            headers={**presigned["headers"], **headers},
            content=content,
        )


async def _complete(
    client: httpx.AsyncClient, upload_key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(f"/api/uploads/{upload_key}/complete", headers=headers)


def _job(upload_key: str) -> dict[str, str]:
    return {"sourceType": "upload", "uploadKey": upload_key, "start": "00:00:02", "end": "00:00:06"}


async def test_presign_put_complete_and_clip(
    api: httpx.AsyncClient, s3_bucket: S3Bucket, s3_worker: Worker, video: bytes, tmp_path: Path
) -> None:
    presigned = await _presign(api, len(video))
    key = presigned["uploadKey"]
    hex_id = key.removeprefix("up_")
    assert presigned["method"] == "PUT"
    assert presigned["headers"] == {"Content-Type": "video/mp4", "Content-Length": str(len(video))}
    url = presigned["url"]
    assert url.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/clipper/sources/{hex_id}/source?")
    assert "X-Amz-Expires=900" in url
    assert "content-length%3Bcontent-type" in url  # both signed: the store holds the PUT to them
    assert ACCESS_KEY in url  # the access key id, as in every presigned URL; never the secret

    # Pending: no job may use it yet.
    early = await api.post("/api/jobs", json=_job(key))
    assert early.status_code == 422, early.text
    assert early.json()["error"]["details"][0]["field"] == "uploadKey"

    stored = await _put(presigned, video)
    assert stored.status_code == 200, stored.text
    assert _objects(s3_bucket) == [f"clipper/sources/{hex_id}/source"]

    completed = await _complete(api, key)
    assert completed.status_code == 201, completed.text
    upload = completed.json()
    assert upload["uploadKey"] == key
    assert upload["kind"] == "media"
    assert upload["sizeBytes"] == len(video)
    assert abs(upload["durationMs"] - 10_000) <= 200
    assert upload["hasVideo"]
    again = await _complete(api, key)  # idempotent: the same upload, 200
    assert again.status_code == 200, again.text
    assert again.json() == upload

    created = await api.post("/api/jobs", json=_job(key))
    assert created.status_code == 202, created.text
    job = await _wait_finished(api, created.json()["id"])
    assert job["status"] == "done", job
    links = await api.get(f"/api/jobs/{job['id']}/result")
    async with httpx.AsyncClient() as store:
        download = await store.get(links.json()["video"]["url"])
    assert download.status_code == 200
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(download.content)
    assert abs((await probe(clip)).duration_ms - 4000) <= 200
    events = await api.get(f"/api/jobs/{job['id']}/events")
    for answer in (completed.text, again.text, events.text, str(job)):
        assert SECRET_KEY not in answer


async def test_a_subtitles_file_completes_as_its_sidecar(
    api: httpx.AsyncClient, s3_bucket: S3Bucket
) -> None:
    srt = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n\n"
    presigned = await _presign(api, len(srt), "application/x-subrip")
    assert (await _put(presigned, srt)).status_code == 200
    completed = await _complete(api, presigned["uploadKey"])
    assert completed.status_code == 201, completed.text
    assert completed.json()["kind"] == "subtitles"
    hex_id = presigned["uploadKey"].removeprefix("up_")
    assert _objects(s3_bucket) == [f"clipper/sources/{hex_id}/subtitles.srt"]


def _refused(answer: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["details"][0]["field"] == field
    assert SECRET_KEY not in answer.text
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contentType": "text/plain", "sizeBytes": 10}, "contentType"),
        ({"contentType": "video/mp4\r\nX-Evil: 1", "sizeBytes": 10}, "contentType"),
        ({"contentType": "video/mp4; codecs=avc1", "sizeBytes": 10}, "contentType"),
        ({"contentType": "video/mp4", "sizeBytes": 0}, "sizeBytes"),
        ({"contentType": "video/mp4"}, "sizeBytes"),
        ({"contentType": "video/mp4", "sizeBytes": 10, "bucket": "x"}, "bucket"),
    ],
)
async def test_invalid_requests_name_their_field(
    api: httpx.AsyncClient, s3_bucket: S3Bucket, body: dict[str, Any], field: str
) -> None:
    _refused(await api.post(PRESIGN, json=body), 422, "VALIDATION_FAILED", field)
    assert _objects(s3_bucket) == []


async def test_the_request_itself_is_held_to_max_request_bytes(api: httpx.AsyncClient) -> None:
    body = {"contentType": "video/mp4", "sizeBytes": 10, "filename": "x" * 70_000}
    _refused(await api.post(PRESIGN, json=body), 413, "PAYLOAD_TOO_LARGE")  # not MAX_INPUT_MB


async def test_a_file_over_max_input_mb_is_refused_in_the_upload_s_words(
    make_client: ApiFactory, s3_bucket: S3Bucket
) -> None:
    api: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url, max_input_mb=1)
    body = {"contentType": "video/mp4", "sizeBytes": 2**20 + 1}
    message = _refused(await api.post(PRESIGN, json=body), 413, "PAYLOAD_TOO_LARGE")
    assert message == "the file is over 1 MB (MAX_INPUT_MB)"
    body["sizeBytes"] = 2**20
    assert (await api.post(PRESIGN, json=body)).status_code == 201


async def test_the_declared_size_counts_against_the_quota_until_it_is_refused(
    make_client: ApiFactory, s3_bucket: S3Bucket, db_url: str
) -> None:
    api: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url, enable_api_keys=True)
    token = await create_key(db_url)
    await _limit(db_url, token, max_upload_bytes=1000)
    key = {"X-API-Key": token}
    first = await _presign(api, 600, headers=key)
    over = await api.post(PRESIGN, json={"contentType": "video/mp4", "sizeBytes": 600}, headers=key)
    _refused(over, 429, "UPLOAD_QUOTA")
    assert int(over.headers["retry-after"]) >= 1
    # Another length than signed: S3, R2 and MinIO refuse the PUT, moto (checking no SigV4
    # presigned signature) stores it. Completing finds it is not the size declared, deletes it
    # and frees its room.
    assert (await _put(first, b"x" * 500, **{"Content-Length": "500"})).status_code == 200
    mismatch = await _complete(api, first["uploadKey"], key)
    message = _refused(mismatch, 422, "VALIDATION_FAILED", "uploadKey")
    assert "500 bytes, not the 600 declared" in message
    assert _objects(s3_bucket) == []
    assert (await _complete(api, first["uploadKey"], key)).status_code == 404  # forgotten
    await _presign(api, 600, headers=key)  # its room is free again


async def test_a_file_that_is_no_media_is_refused_and_deleted(
    api: httpx.AsyncClient, s3_bucket: S3Bucket
) -> None:
    junk = b"not a video at all" * 10
    presigned = await _presign(api, len(junk))
    assert (await _put(presigned, junk)).status_code == 200
    _refused(await _complete(api, presigned["uploadKey"]), 422, "VALIDATION_FAILED", "uploadKey")
    assert _objects(s3_bucket) == []


async def test_completing_before_the_file_is_sent_is_409_and_later_works(
    api: httpx.AsyncClient, video: bytes
) -> None:
    presigned = await _presign(api, len(video))
    early = await _complete(api, presigned["uploadKey"])
    _refused(early, 409, "UPLOAD_NOT_RECEIVED", "uploadKey")
    assert (await _put(presigned, video)).status_code == 200
    assert (await _complete(api, presigned["uploadKey"])).status_code == 201


async def test_only_its_tenant_completes_it(
    make_client: ApiFactory, s3_bucket: S3Bucket, db_url: str, video: bytes
) -> None:
    api: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url, enable_api_keys=True)
    owner = {"X-API-Key": await create_key(db_url)}
    other = {"X-API-Key": await create_key(db_url)}
    presigned = await _presign(api, len(video), headers=owner)
    assert (await _put(presigned, video)).status_code == 200
    key = presigned["uploadKey"]
    _refused(await _complete(api, key, other), 404, "NOT_FOUND")
    for unknown in ("up_" + "0" * 32, "up_nothex", "x" * 300):
        _refused(await _complete(api, unknown, owner), 404, "NOT_FOUND")
    assert (await _complete(api, key, owner)).status_code == 201
    _refused(await _complete(api, key, other), 404, "NOT_FOUND")  # stored, still not theirs
    refused = await api.post("/api/jobs", json=_job(key), headers=other)
    _refused(refused, 422, "VALIDATION_FAILED", "uploadKey")


async def test_local_storage_has_no_direct_uploads(make_client: ApiFactory) -> None:
    api: httpx.AsyncClient = await make_client()  # no STORAGE_URL: files under DATA_DIR
    body = {"contentType": "video/mp4", "sizeBytes": 100}
    message = _refused(await api.post(PRESIGN, json=body), 409, "DIRECT_UPLOADS_UNAVAILABLE")
    assert "STORAGE_URL" in message
    assert "POST /api/uploads" in message


async def test_retention_deletes_a_pending_upload_past_its_expiry_and_grace(
    api: httpx.AsyncClient, s3_bucket: S3Bucket, db_url: str, video: bytes
) -> None:
    abandoned = await _presign(api, len(video))
    assert (await _put(abandoned, video)).status_code == 200
    recent = await _presign(api, len(video))  # expired, but within the grace period
    fresh = await _presign(api, len(video))
    engine = create_engine(db_url, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:
            for upload, ago in ((abandoned, "2 hours"), (recent, "10 minutes")):
                await session.execute(
                    text(
                        "UPDATE uploads SET expires_at = now() - CAST(:ago AS interval) "
                        "WHERE key = :key"
                    ),
                    {"ago": ago, "key": upload["uploadKey"]},
                )
        storage = storage_for(settings_for(storage_url=s3_bucket.url))
        assert await cleanup_old_uploads(sessions, storage, older_than_hours=72) == 1
        async with sessions() as session:
            left = await session.scalars(text("SELECT key FROM uploads ORDER BY key"))
            keys = set(left.all())
    finally:
        await engine.dispose()
    assert keys == {recent["uploadKey"], fresh["uploadKey"]}
    assert _objects(s3_bucket) == []
    _refused(await _complete(api, abandoned["uploadKey"]), 404, "NOT_FOUND")
