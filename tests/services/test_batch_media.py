"""The media a URL-source batch shares: one fetch under the batch's advisory lock, kept alive
however long the fetch takes, while the batch's other jobs wait for it and then cut from the
stored copy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clipper.db.models import Job
from clipper.db.session import create_engine, session_factory
from clipper.media.inputs import MediaInput
from clipper.queue import ConnectionTimeouts
from clipper.services.clipping import UrlSource
from clipper.services.reading import SourceReading
from clipper.storage import LocalStorage, batch_media_key
from tests.helpers import wait_for

IDLE_TIMEOUT_SECONDS = 1.0


@pytest.fixture
async def short_idle_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Sessions the server ends after a second idle in a transaction."""
    timeouts = ConnectionTimeouts(idle_in_transaction_seconds=IDLE_TIMEOUT_SECONDS)
    engine = create_engine(db_url, pool_size=4, timeouts=timeouts)
    yield engine
    await engine.dispose()


class SlowFetch:
    """Stands in for the guarded fetch: counts the fetches, and each lasts until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self.release = asyncio.Event()

        async def media_url(source: UrlSource, url: str) -> str:
            return url

        async def download(source: UrlSource, media: str, target: Path) -> None:
            self.started += 1
            await self.release.wait()
            await asyncio.to_thread(target.write_bytes, b"the fetched media")

        monkeypatch.setattr(UrlSource, "_media_url", media_url)
        monkeypatch.setattr(UrlSource, "_download", download)


async def _no_progress(percent: int, stage: str) -> None:
    return None


async def _source_of(source: UrlSource, job: Job, scratch: Path) -> MediaInput:
    async with source(job, scratch, _no_progress) as media:
        return media


async def _lock_held_for(db_url: str) -> float:
    """How long the transaction holding an advisory lock has lasted (0: none is held)."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM now() - a.xact_start) FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted"
        )
        row = await cursor.fetchone()
    return float(row[0]) if row else 0.0


async def test_one_fetch_for_the_batch_held_past_the_idle_timeout_and_shared(
    db_url: str, short_idle_engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch = SlowFetch(monkeypatch)
    storage = LocalStorage(tmp_path / "data")
    source = UrlSource(
        ["127.0.0.1"],
        2**20,
        10.0,
        storage=storage,
        reading=SourceReading(storage, by_range=True),
        sessions=session_factory(short_idle_engine),
        deadline_seconds=5.0,
        keepalive_seconds=IDLE_TIMEOUT_SECONDS / 3,
    )
    batch_id = uuid.uuid4()
    scratch = [tmp_path / f"scratch-{n}" for n in range(2)]
    for folder in scratch:
        folder.mkdir()
    jobs = [
        Job(id=uuid.uuid4(), batch_id=batch_id, source_url="http://127.0.0.1/talk.mp4")
        for _ in scratch
    ]
    first = asyncio.create_task(_source_of(source, jobs[0], scratch[0]))
    await wait_for(lambda: fetch.started == 1, message="the first fetch")
    second = asyncio.create_task(_source_of(source, jobs[1], scratch[1]))

    async def held_long() -> bool:
        return await _lock_held_for(db_url) > 3 * IDLE_TIMEOUT_SECONDS

    # Idle that long, the server would have ended the session and its lock with it.
    await wait_for(held_long, timeout=15, interval=0.1, message="the lock held past the timeout")
    assert not second.done()  # waiting for the fetch under way, not fetching itself
    fetch.release.set()
    paths = list(await asyncio.gather(first, second))
    stored = storage.path(batch_media_key(batch_id))
    assert paths == [stored, stored]
    assert stored.read_bytes() == b"the fetched media"
    assert fetch.started == 1
    assert await _lock_held_for(db_url) == 0.0  # released with its transaction
