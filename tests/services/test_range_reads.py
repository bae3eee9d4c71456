"""A short clip near the end of a long source reads only what it needs: from the object store
(a real moto server) and from a URL source whose server takes ranges, through the worker's
relay; a URL source's server that turns to a refused address mid-way fails the job with the
guard's code, not FFmpeg's; and with SOURCE_RANGE_READS off the source is downloaded whole."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clipper.db.models import Job
from clipper.fetch.guard import ForbiddenUrlError
from clipper.media.probe import probe
from clipper.queue import JobContext
from clipper.services.clipping import ClipProcessor, Source, UploadedSource, UrlSource
from clipper.services.processing import ClipResult
from clipper.services.reading import SourceReading
from clipper.services.subtitling import SpeechModel, SpeechModelSpec
from clipper.storage import LocalStorage, Storage, new_upload_key, source_key
from clipper.storage_s3 import S3Storage
from tests.local_server import FileServer, serving
from tests.media_files import make_video
from tests.moto_server import S3Bucket

SOURCE_SECONDS = 120
CLIP = (110_000, 115_000)  # 5 s near the end


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ranges") / "long.mp4"
    return make_video(path, SOURCE_SECONDS, size="640x360")  # ~28 MB


async def _no_progress(percent: int, stage: str) -> None:
    return None


def _job(**fields: object) -> Job:
    return Job(id=uuid.uuid4(), start_ms=CLIP[0], end_ms=CLIP[1], with_subtitles=False, **fields)


async def _clip(storage: Storage, source: Source, job: Job, scratch: Path) -> ClipResult:
    processor = ClipProcessor(
        storage,
        source,
        scratch,
        ffmpeg_timeout_seconds=120,
        max_source_ms=3_600_000,
        subtitle_fonts_dir=Path("/usr/share/fonts"),
        speech=SpeechModel(SpeechModelSpec()),
        scratch_stale_after_seconds=60,
    )
    # The processor reads only the attempt number; a real context needs a consumer's lease.
    return await processor(job, _no_progress, cast(JobContext, SimpleNamespace(attempt=1)))


async def _clip_lasts(storage: Storage, key: str, tmp_path: Path) -> int:
    async with SourceReading(storage, by_range=False).stored(key, tmp_path) as clip:
        return (await probe(clip)).duration_ms


@pytest.mark.parametrize("by_range", [True, False])
async def test_an_upload_in_the_store_is_read_by_range(
    s3_bucket: S3Bucket, long_source: Path, tmp_path: Path, by_range: bool
) -> None:
    storage = S3Storage.from_url(s3_bucket.url)
    upload = new_upload_key()
    await storage.put_file(source_key(upload), Path(shutil.copy(long_source, tmp_path)))
    size = (await storage.ranged(source_key(upload))).size
    reading = SourceReading(storage, by_range=by_range)
    try:
        result = await _clip(
            storage,
            UploadedSource(storage, reading),
            _job(source_type="upload", upload_key=upload),
            tmp_path / "scratch",
        )
    finally:
        await reading.aclose()
    assert abs(await _clip_lasts(storage, result.video_key, tmp_path) - 5_000) <= 100
    if by_range:
        # The index (moov), and the 5 s: a small share of the whole.
        assert 0 < reading.bytes_relayed < size / 4, (reading.bytes_relayed, size)
    else:
        assert reading.bytes_relayed == 0  # downloaded whole into the scratch folder instead


def _url_source(
    reading: SourceReading, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> Source:
    async def direct(source: UrlSource, url: str) -> str:
        return url  # a direct media URL: yt-dlp's extraction is tested in tests/fetch

    monkeypatch.setattr(UrlSource, "_media_url", direct)
    return UrlSource(
        ["127.0.0.1"],
        2**30,
        60.0,
        storage=storage,
        reading=reading,
        # Only a batch's jobs use sessions and their deadlines: none here.
        sessions=cast(async_sessionmaker[AsyncSession], None),
        deadline_seconds=5.0,
        keepalive_seconds=1.0,
    )


async def test_a_url_source_that_takes_ranges_is_read_by_range(
    long_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "data")
    reading = SourceReading(storage, by_range=True)
    body = await asyncio.to_thread(long_source.read_bytes)
    try:
        with serving(FileServer(body)) as server:
            source = _url_source(reading, storage, monkeypatch)
            job = _job(source_type="youtube", source_url=server.url)
            result = await _clip(storage, source, job, tmp_path / "scratch")
    finally:
        await reading.aclose()
    assert abs((await probe(storage.path(result.video_key))).duration_ms - 5_000) <= 100
    assert server.asked[0] == "bytes=0-0"
    assert all(asked is not None and asked.startswith("bytes=") for asked in server.asked)
    assert 0 < server.bytes_sent < len(body) / 4, (server.bytes_sent, len(body))


async def test_a_url_source_turning_to_a_refused_address_fails_with_the_guards_code(
    long_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "data")
    reading = SourceReading(storage, by_range=True)
    metadata = "http://169.254.169.254/latest/meta-data/"
    try:
        with serving(FileServer(b"0" * 1000, redirect_to=metadata, redirect_after=1)) as server:
            source = _url_source(reading, storage, monkeypatch)
            job = _job(source_type="youtube", source_url=server.url)
            with pytest.raises(ForbiddenUrlError):  # FORBIDDEN_URL: the user's, not retried
                await _clip(storage, source, job, tmp_path / "scratch")
    finally:
        await reading.aclose()
