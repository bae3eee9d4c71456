"""STORAGE_URL=s3://…: an upload, a job and its result all through an S3-compatible store (a
real moto server process), the API and the in-process worker keeping no copy, and the clip
downloaded from the store's presigned URL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from clipper.media.probe import probe
from clipper.worker.service import Worker
from tests.api.conftest import ApiFactory
from tests.api.test_clips import _wait_finished
from tests.media_files import make_video
from tests.moto_server import SECRET_KEY, S3Bucket


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("s3clips") / "source.mp4", seconds=10)


def _objects(bucket: S3Bucket) -> list[str]:
    listed = bucket.client().list_objects_v2(Bucket=bucket.name)
    return sorted(item["Key"] for item in listed.get("Contents", []))


async def test_upload_clip_and_download_through_the_store(
    make_client: ApiFactory,
    s3_bucket: S3Bucket,
    s3_worker: Worker,
    video: Path,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    client: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url)
    with video.open("rb") as file:
        uploaded = await client.post("/api/uploads", files={"file": ("a.mp4", file, "video/mp4")})
    assert uploaded.status_code == 201, uploaded.text
    key = uploaded.json()["uploadKey"]
    hex_id = key.removeprefix("up_")
    assert _objects(s3_bucket) == [f"clipper/sources/{hex_id}/source"]
    assert not (data_dir / "sources" / hex_id).exists()  # the API keeps no copy

    body = {"sourceType": "upload", "uploadKey": key, "start": "00:00:02", "end": "00:00:06"}
    created = await client.post("/api/jobs", json=body)
    assert created.status_code == 202, created.text
    job = await _wait_finished(client, created.json()["id"])
    assert job["status"] == "done", job
    result_objects = [name for name in _objects(s3_bucket) if "/results/" in name]
    assert result_objects == [f"clipper/results/{job['id']}/1/clip.mp4"]
    assert list((data_dir / "scratch").iterdir()) == []  # the downloaded source went too

    links = await client.get(f"/api/jobs/{job['id']}/result")
    assert links.status_code == 200
    url = links.json()["video"]["url"]
    assert url.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/clipper/results/")
    assert "X-Amz-Expires=900" in url
    assert SECRET_KEY not in url
    async with httpx.AsyncClient() as http:  # from the store itself, no Clipper in between
        download = await http.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(download.content)
    assert abs((await probe(clip)).duration_ms - 4000) <= 200
    events = (await client.get(f"/api/jobs/{job['id']}/events")).text
    assert SECRET_KEY not in events
    assert SECRET_KEY not in str(job)


async def test_a_subtitles_upload_is_kept_as_its_sidecar_only(
    make_client: ApiFactory, s3_bucket: S3Bucket
) -> None:
    client: httpx.AsyncClient = await make_client(storage_url=s3_bucket.url)
    srt = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n\n"
    uploaded = await client.post(
        "/api/uploads", files={"file": ("subs.srt", srt, "application/x-subrip")}
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["kind"] == "subtitles"
    hex_id = uploaded.json()["uploadKey"].removeprefix("up_")
    assert _objects(s3_bucket) == [f"clipper/sources/{hex_id}/subtitles.srt"]
