"""The Storage contract in an S3-compatible store (a real moto server process): all-or-nothing
saves with multipart parts, multipart put_file, deletes by prefix, retention's listings,
presigned links, and errors that show no credentials."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clipper.errors import StorageUnavailableError
from clipper.storage import (
    LocalStorage,
    TooLargeError,
    batch_media_key,
    new_upload_key,
    result_key,
    source_key,
    storage_for,
)
from clipper.storage_s3 import S3Storage
from tests.api.conftest import settings_for
from tests.moto_server import SECRET_KEY, S3Bucket

MiB = 2**20
PART = 5 * MiB


def _storage(bucket: S3Bucket) -> S3Storage:
    return S3Storage(bucket.name, "clipper", part_size=PART)


async def _chunks(
    total: int, size: int = MiB, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise RuntimeError("the client went away")
        chunk = bytes([sent // size % 256]) * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def _left(bucket: S3Bucket) -> tuple[list[str], list[str]]:
    """The objects and the unfinished multipart uploads in the bucket."""
    client = bucket.client()
    objects = [o["Key"] for o in client.list_objects_v2(Bucket=bucket.name).get("Contents", [])]
    uploads = [
        u["Key"] for u in client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    ]
    return objects, uploads


def test_the_factory_picks_the_storage_by_storage_url(tmp_path: Path) -> None:
    local = storage_for(settings_for(data_dir=tmp_path))
    assert isinstance(local, LocalStorage)
    assert local.root == tmp_path.resolve()
    s3 = storage_for(settings_for(storage_url="s3://my-bucket/some/prefix/"))
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.object_key("results/x")) == ("my-bucket", "some/prefix/results/x")


async def test_save_small_and_multipart_then_read_and_delete(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    storage = _storage(s3_bucket)
    small, large = source_key(new_upload_key()), source_key(new_upload_key())
    assert await storage.save(small, _chunks(1000), 10 * MiB) == 1000
    assert await storage.save(large, _chunks(12 * MiB + 7), 20 * MiB) == 12 * MiB + 7
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=f"clipper/{large}")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert await storage.exists(large)
    copy = await storage.local_path(large, tmp_path)
    expected = b"".join([chunk async for chunk in _chunks(12 * MiB + 7)])
    assert copy.read_bytes() == expected
    assert await asyncio.to_thread(os.listdir, tmp_path) == [copy.name]  # no .part left
    await storage.delete(large)
    await storage.delete(large)  # a missing object is fine
    assert not await storage.exists(large)
    assert await storage.exists(small)


@pytest.mark.parametrize("fail", ["too large", "client gone"])
async def test_a_failed_save_leaves_nothing(s3_bucket: S3Bucket, fail: str) -> None:
    storage = _storage(s3_bucket)
    key = source_key(new_upload_key())
    if fail == "too large":
        with pytest.raises(TooLargeError):
            await storage.save(key, _chunks(12 * MiB), 11 * MiB)  # past two uploaded parts
    else:
        with pytest.raises(RuntimeError):
            await storage.save(key, _chunks(12 * MiB, fail_after=7 * MiB), 20 * MiB)
    assert _left(s3_bucket) == ([], [])  # no object, and the multipart upload aborted
    assert not await storage.exists(key)


async def test_put_file_uploads_a_large_file_in_parts(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    storage = _storage(s3_bucket)
    made = tmp_path / "clip.mp4"
    made.write_bytes(b"\x01" * (6 * MiB + 3))
    job = uuid.uuid4()
    key = result_key(job, 1)
    await storage.put_file(key, made)
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=f"clipper/{key}")
    assert head["ContentLength"] == 6 * MiB + 3
    assert head["ETag"].strip('"').endswith("-2")
    assert _left(s3_bucket)[1] == []
    assert not made.exists()  # moved, as LocalStorage moves it


async def test_delete_results_removes_every_attempt_of_the_job_only(s3_bucket: S3Bucket) -> None:
    storage = _storage(s3_bucket)
    job, other = uuid.uuid4(), uuid.uuid4()
    keys = [result_key(job, 1), result_key(job, 2, "poster.jpg"), result_key(other, 1)]
    for key in keys:
        await storage.save(key, _chunks(10), MiB)
    await storage.delete_results(job)
    await storage.delete_results(uuid.uuid4())  # nothing there is fine
    assert _left(s3_bucket)[0] == [f"clipper/{result_key(other, 1)}"]


async def test_retention_listings(s3_bucket: S3Bucket) -> None:
    storage = _storage(s3_bucket)
    upload = new_upload_key()
    await storage.save(source_key(upload), _chunks(10), MiB)
    batch = uuid.uuid4()
    await storage.save(batch_media_key(batch), _chunks(10), MiB)
    assert await storage.uploads_older_than(3600) == []
    assert await storage.uploads_older_than(-60) == [upload]  # every one (a batch is none)
    assert await storage.batches_with_media() == [batch]
    await storage.delete_upload(upload)
    await storage.delete_batch_media(batch)
    assert await storage.uploads_older_than(-60) == []
    assert await storage.batches_with_media() == []
    assert _left(s3_bucket) == ([], [])


async def test_links_serve_the_file_with_its_type_and_expire(s3_bucket: S3Bucket) -> None:
    storage = _storage(s3_bucket)
    key = result_key(uuid.uuid4(), 1, "clip.webm")
    await storage.save(key, _chunks(100), MiB)
    url = await storage.link(key, 900, "video/webm")
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["900"]
    assert SECRET_KEY not in url
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "video/webm"
        assert answer.content == b"\x00" * 100
        ranged = await http.get(url, headers={"Range": "bytes=0-9"})
        assert (ranged.status_code, len(ranged.content)) == (206, 10)
    # moto serves a presigned URL past its expiry (it checks no expiry), so the expiry is
    # checked as S3 reads it: signed now (X-Amz-Date), valid for X-Amz-Expires seconds.
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 60
    short = await storage.link(key, 10, "video/webm")
    assert short is not None
    assert parse_qs(urlsplit(short).query)["X-Amz-Expires"] == ["10"]


async def test_local_storage_has_no_links(tmp_path: Path) -> None:
    assert await LocalStorage(tmp_path).link("results/x/1/clip.mp4", 900, "video/mp4") is None


async def test_errors_name_the_operation_never_the_endpoint_or_secret(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    missing = S3Storage("no-such-bucket-here", "clipper", part_size=PART)
    with pytest.raises(StorageUnavailableError) as refused:
        await missing.save(source_key(new_upload_key()), _chunks(10), MiB)
    assert str(refused.value) == "object storage PutObject failed: NoSuchBucket"
    assert refused.value.__suppress_context__
    with pytest.raises(StorageUnavailableError) as listing:
        await missing.uploads_older_than(0)
    assert "NoSuchBucket" in str(listing.value)
    with pytest.raises(ValueError, match="scratch"):
        await _storage(s3_bucket).local_path("results/x/1/clip.mp4")
    with pytest.raises(ValueError, match="not a plain key"):
        _storage(s3_bucket).object_key("results/../sources/x")


async def test_an_unreachable_store_is_an_error_without_its_address(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage = _storage(s3_bucket)
    with pytest.raises(StorageUnavailableError) as refused:
        await storage.exists("results/x/1/clip.mp4")
    assert "127.0.0.1" not in str(refused.value)
    assert "EndpointConnectionError" in str(refused.value)
