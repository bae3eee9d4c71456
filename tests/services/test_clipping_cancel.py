"""Each attempt of a clip job works in a scratch folder of its own and stores under keys of its
own: a new attempt never deletes a folder an earlier one may still use, stale folders go once
their lease has expired, and every attempt removes its own folder however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Literal, cast

import pytest

from clipper.db.models import Job
from clipper.media.errors import MissingSourceError
from clipper.queue import JobContext
from clipper.services.clipping import ClipProcessor
from clipper.services.processing import ClipResult, Progress
from clipper.services.subtitling import SpeechModel, SpeechModelSpec
from clipper.storage import LocalStorage
from tests.helpers import wait_event, wait_for
from tests.media_files import make_video

LEASE_SECONDS = 60.0
Outcome = Literal["video", "missing", "hang"]


class FakeSource:
    """Notes the attempt's scratch folder, then gives the video, fails, or hangs until the
    attempt is cancelled."""

    def __init__(self, outcome: Outcome, video: Path) -> None:
        self.outcome = outcome
        self.video = video
        self.started = asyncio.Event()
        self.scratch = Path()

    @contextlib.asynccontextmanager
    async def __call__(self, job: Job, scratch: Path, progress: Progress) -> AsyncIterator[Path]:
        self.scratch = scratch
        self.started.set()
        if self.outcome == "missing":
            raise MissingSourceError("the upload no longer exists")
        if self.outcome == "hang":
            await asyncio.Event().wait()
        yield self.video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "source.mp4", seconds=4)


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    return tmp_path / "scratch"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "data")


def _job() -> Job:
    return Job(
        id=uuid.uuid4(),
        source_type="upload",
        start_ms=0,
        end_ms=2_000,
        with_subtitles=False,
        burn_subtitles=False,
        subtitles_upload_key=None,
    )


def _context(attempt: int) -> JobContext:
    # The processor reads only the attempt number; a real context needs a consumer's lease.
    return cast(JobContext, SimpleNamespace(attempt=attempt))


def _folders(root: Path) -> list[Path]:
    return list(root.iterdir())


def _folder(root: Path, name: str, age_seconds: float) -> Path:
    """A scratch folder with a partial file, last touched `age_seconds` ago."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "source").write_bytes(b"partial")
    touched = time.time() - age_seconds
    os.utime(folder, (touched, touched))
    return folder


async def _no_progress(percent: int, stage: str) -> None:
    return None


def _processor(
    storage: LocalStorage, source: FakeSource, root: Path, stale_after: float = LEASE_SECONDS
) -> ClipProcessor:
    return ClipProcessor(
        storage,
        source,
        root,
        ffmpeg_timeout_seconds=60,
        max_source_ms=3_600_000,
        subtitle_fonts_dir=root / "fonts",
        speech=SpeechModel(SpeechModelSpec()),
        scratch_stale_after_seconds=stale_after,
    )


async def _run(
    storage: LocalStorage, source: FakeSource, root: Path, job: Job, attempt: int
) -> ClipResult:
    return await _processor(storage, source, root)(job, _no_progress, _context(attempt))


async def _only_this_task_left() -> None:
    await wait_for(
        lambda: asyncio.all_tasks() == {asyncio.current_task()},
        message="the attempt's background tasks to end",
    )


async def test_a_new_attempt_leaves_a_running_attempts_folder_and_files_alone(
    storage: LocalStorage, scratch_root: Path, video: Path
) -> None:
    job = _job()
    stale_attempt = FakeSource("hang", video)
    first = asyncio.create_task(_run(storage, stale_attempt, scratch_root, job, attempt=1))
    await wait_event(stale_attempt.started, what="attempt 1 under way")
    assert stale_attempt.scratch.name.startswith(f"clip-{job.id}-1-")

    result = await _run(storage, FakeSource("video", video), scratch_root, job, attempt=2)

    assert _folders(scratch_root) == [stale_attempt.scratch]  # attempt 1's, untouched
    assert result.video_key == f"results/{job.id}/2/clip.mp4"
    assert storage.path(result.video_key).is_file()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert _folders(scratch_root) == []
    assert storage.path(result.video_key).is_file()  # the stale attempt never touched it


async def test_folders_untouched_for_longer_than_a_lease_are_removed_fresher_ones_kept(
    storage: LocalStorage, scratch_root: Path, video: Path
) -> None:
    # Other jobs' folders: one whose worker was killed, one whose attempt runs elsewhere.
    expired = _folder(scratch_root, f"clip-{uuid.uuid4()}-1-abcd", LEASE_SECONDS + 5)
    fresh = _folder(scratch_root, f"clip-{uuid.uuid4()}-2-efgh", LEASE_SECONDS - 5)

    await _run(storage, FakeSource("video", video), scratch_root, _job(), attempt=1)

    assert not expired.exists()
    assert _folders(scratch_root) == [fresh]
    assert (fresh / "source").read_bytes() == b"partial"


@pytest.mark.parametrize(
    ("outcome", "ends_with"),
    [("video", None), ("missing", MissingSourceError), ("hang", asyncio.CancelledError)],
)
async def test_an_attempt_removes_its_own_folder_however_it_ends(
    storage: LocalStorage,
    scratch_root: Path,
    video: Path,
    outcome: Outcome,
    ends_with: type[BaseException] | None,
) -> None:
    source = FakeSource(outcome, video)
    attempt = asyncio.create_task(_run(storage, source, scratch_root, _job(), attempt=1))
    await wait_event(source.started, what="the attempt under way")
    assert source.scratch.is_dir()
    if outcome == "hang":
        attempt.cancel()  # as the consumer does on a lost lease, a hard shutdown or a cancel
    if ends_with is None:
        await attempt
    else:
        with pytest.raises(ends_with):
            await attempt
    assert not source.scratch.exists()
    assert _folders(scratch_root) == []
    await _only_this_task_left()


async def test_a_running_attempt_keeps_its_folder_fresh(
    storage: LocalStorage, scratch_root: Path, video: Path
) -> None:
    stale_after = 0.6  # touched every 0.2 s
    source = FakeSource("hang", video)
    processor = _processor(storage, source, scratch_root, stale_after)
    attempt = asyncio.create_task(processor(_job(), _no_progress, _context(1)))
    await wait_event(source.started, what="the attempt under way")
    long_ago = time.time() - 1000
    os.utime(source.scratch, (long_ago, long_ago))
    await wait_for(
        lambda: source.scratch.stat().st_mtime > time.time() - stale_after,
        timeout=5,
        message="the folder touched again",
    )
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
