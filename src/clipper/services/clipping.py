"""The clip processor: from a job's source to a verified clip in storage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Collection, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JobRepository, ping
from ..domain.clips import CutMode
from ..domain.outputs import OutputOptions
from ..domain.subtitles import SubtitlesMade, SubtitleSource
from ..fetch.download import download, ranged_source
from ..fetch.extract import media_url
from ..fetch.guard import check_url
from ..media.cutting import cut_segment, cut_start
from ..media.errors import MissingSourceError
from ..media.images import THUMBNAIL_NAME, make_preview, make_thumbnail, preview_name
from ..media.inputs import MediaInput
from ..media.outputs import OutputPlan, plan_output
from ..media.probe import MediaInfo, probe
from ..media.subtitles import burn_filter
from ..queue import JobContext
from ..storage import Storage, batch_media_key, result_key, source_key
from .batches import media_lock_name
from .failures import SourceTooLongError
from .processing import ClipResult, Progress
from .reading import SourceReading
from .subtitling import SpeechModel, Subtitler

# Progress: the probe to 5 %, subtitles from speech (when it comes to that) to 45 %, the cut to
# 95 %, the images and the store to 100 %.
_CUT_FROM = 5
_TRANSCRIBE_SHARE = 40

# Every attempt's scratch folder is named clip-{job id}-{attempt}-{random}.
_SCRATCH_PREFIX = "clip-"
# How often a job of a batch looks again whether another worker's fetch of the batch's media
# has finished (a lock wait would run into the sessions' lock_timeout on a long fetch).
_SHARED_FETCH_POLL_SECONDS = 0.25

T = TypeVar("T")


class Source(Protocol):
    def __call__(
        self, job: Job, scratch: Path, progress: Progress
    ) -> contextlib.AbstractAsyncContextManager[MediaInput]:
        """The job's source while the block runs: a URL of the relay that reads it by range,
        or a local file (`scratch` holds a download)."""
        ...


class UploadedSource:
    def __init__(self, storage: Storage, reading: SourceReading) -> None:
        self._storage = storage
        self._reading = reading

    @contextlib.asynccontextmanager
    async def __call__(
        self, job: Job, scratch: Path, progress: Progress
    ) -> AsyncIterator[MediaInput]:
        assert job.upload_key is not None  # the registry sends only upload jobs here
        key = source_key(job.upload_key)
        if not await self._storage.exists(key):
            raise MissingSourceError(f"the upload {job.upload_key} no longer exists")
        async with self._reading.stored(key, scratch) as source:
            yield source


class UrlSource:
    """A page or media URL: yt-dlp finds the media, read by range through the guard when its
    server allows, else downloaded through the guard. A job of a batch cuts from the batch's
    stored copy instead, which the first of its jobs to need it fetches (see `_shared`)."""

    def __init__(
        self,
        allowlist: Collection[str],
        max_bytes: int,
        timeout_seconds: float,
        *,
        storage: Storage,
        reading: SourceReading,
        sessions: async_sessionmaker[AsyncSession],
        deadline_seconds: float,
        keepalive_seconds: float,
    ) -> None:
        """`deadline_seconds`: the longest wait on one statement; `keepalive_seconds`: how
        often the transaction holding a batch's fetch lock runs one (well inside the server's
        idle_in_transaction_session_timeout, which would end it and release the lock)."""
        self._allowlist = allowlist
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._storage = storage
        self._reading = reading
        self._sessions = sessions
        self._deadline = deadline_seconds
        self._keepalive = keepalive_seconds

    @contextlib.asynccontextmanager
    async def __call__(
        self, job: Job, scratch: Path, progress: Progress
    ) -> AsyncIterator[MediaInput]:
        assert job.source_url is not None  # the registry sends only URL jobs here
        await progress(1, "fetch")
        if job.batch_id is not None:
            key = await self._shared(job.batch_id, job.source_url, scratch)
            async with self._reading.stored(key, scratch) as source:
                yield source
            return
        media = await self._media_url(job.source_url)
        if self._reading.by_range:
            async with ranged_source(
                media, max_bytes=self._max_bytes, allowlist=self._allowlist
            ) as reader:
                if reader is not None:
                    async with self._reading.relayed(reader) as source:
                        yield source
                    return
        target = scratch / "source"
        await self._download(media, target)
        yield target

    async def _media_url(self, url: str) -> str:
        await asyncio.to_thread(check_url, url, self._allowlist)  # before any request
        return await media_url(url, allowlist=self._allowlist)

    async def _download(self, media: str, target: Path) -> None:
        await download(
            media,
            target,
            max_bytes=self._max_bytes,
            timeout_seconds=self._timeout,
            allowlist=self._allowlist,
        )

    async def _shared(self, batch_id: uuid.UUID, url: str, scratch: Path) -> str:
        """The key of the batch's stored media, fetched first if it is not there. Under the
        batch's advisory lock (transaction-level: a worker that dies releases it with its
        session), so two workers never fetch it at once: a job whose lock is taken waits for
        the fetch under way, then finds the media stored. Retention deletes the media under
        the same lock, only once no job of the batch is queued or processing."""
        key = batch_media_key(batch_id)
        while True:
            async with self._sessions.begin() as session:
                if await self._within(JobRepository(session).try_lock(media_lock_name(batch_id))):
                    if not await self._storage.exists(key):
                        fetched = scratch / "source"
                        media = await self._holding(session, self._media_url(url))
                        await self._holding(session, self._download(media, fetched))
                        await self._storage.put_file(key, fetched)  # a .part, then renamed
                    return key
            await asyncio.sleep(_SHARED_FETCH_POLL_SECONDS)

    async def _holding(self, session: AsyncSession, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` while keeping the session's transaction, and the lock it holds, alive.
        When the session fails, `work` is cancelled too: without the lock, another worker may
        start the same fetch."""
        task = asyncio.create_task(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._keepalive)
                if done:
                    return task.result()  # raises what the work raised
                await self._within(ping(session))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # its own clean-up (the partial file) runs first

    async def _within(self, statement: Coroutine[Any, Any, T]) -> T:
        """A statement within the deadline: a hung connection cannot stall the attempt."""
        async with asyncio.timeout(self._deadline):
            return await statement


class ClipProcessor:
    """Stages: fetch (URL sources), probe 0-5 %, transcribe 5-45 % (subtitles from speech),
    cut (stream copy) or encode to 95 %, images
    (a thumbnail, a preview: when asked) and store 95-100 %. The consumer renews the job's
    lease on its heartbeat while FFmpeg runs, and cancels the task when the lease is lost, on
    a hard shutdown or on cancel: FFmpeg and downloads stop with it.

    Each attempt works in a scratch folder of its own, removed afterwards whatever happened,
    and stores its files under keys of its own, so a stale attempt still running elsewhere
    never touches the winner's. While it runs, an attempt keeps its folder's mtime fresh; a
    folder left untouched for `scratch_stale_after_seconds` (the lease time) belongs to an
    attempt that is gone (a killed worker cannot clean up), and any attempt removes it."""

    def __init__(
        self,
        storage: Storage,
        source: Source,
        scratch_root: Path,
        *,
        ffmpeg_timeout_seconds: float,
        max_source_ms: int,
        subtitle_fonts_dir: Path,
        speech: SpeechModel,
        scratch_stale_after_seconds: float,
    ) -> None:
        """`speech`: the worker process's one speech model (loaded by the first job that
        needs it), for subtitles no sidecar or track has."""
        self._fonts_dir = subtitle_fonts_dir
        self._subtitler = Subtitler(storage, speech, timeout_seconds=ffmpeg_timeout_seconds)
        self._storage = storage
        self._source = source
        self._scratch_root = scratch_root
        self._timeout = ffmpeg_timeout_seconds
        self._max_source_ms = max_source_ms
        self._stale_after = scratch_stale_after_seconds

    async def __call__(self, job: Job, progress: Progress, context: JobContext) -> ClipResult:
        async with self._scratch(job, context.attempt) as scratch:
            return await self._cut(job, context.attempt, progress, scratch)

    @contextlib.asynccontextmanager
    async def _scratch(self, job: Job, attempt: int) -> AsyncIterator[Path]:
        await asyncio.to_thread(self._remove_stale_folders)
        # Made in the event loop, not a thread: a cancelled await of a thread could leave a
        # folder nobody removes until it goes stale.
        folder = Path(
            tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{job.id}-{attempt}-", dir=self._scratch_root)
        )
        keep_fresh = asyncio.create_task(self._keep_fresh(folder))
        try:
            yield folder
        finally:
            keep_fresh.cancel()
            # Shielded: a cancelled attempt still removes its folder, even if cancelled again.
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))

    def _remove_stale_folders(self) -> None:
        """Remove every attempt's folder (of any job) untouched for longer than a lease: its
        attempt stopped renewing it, so its lease has expired too. Fresher ones are in use."""
        self._scratch_root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self._stale_after
        for folder in self._scratch_root.glob(f"{_SCRATCH_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):  # another worker removed it first
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)

    async def _keep_fresh(self, folder: Path) -> None:
        """Touch the folder while the attempt runs (several times per lease), so that other
        attempts' sweeps see it in use."""
        while True:
            await asyncio.sleep(self._stale_after / 3)
            try:
                await asyncio.to_thread(os.utime, folder)
            except FileNotFoundError:  # swept all the same (the clock jumped): nothing to keep
                return

    async def _subtitles(
        self,
        job: Job,
        mode: CutMode,
        source: MediaInput,
        info: MediaInfo,
        out: Path,
        progress: Progress,
    ) -> SubtitlesMade:
        """From where the clip starts: a fast cut's keyframe can be seconds before the start."""
        start_ms = (
            (await cut_start(source, info, job.start_ms, mode)).frame_ms
            if mode is CutMode.FAST
            else job.start_ms
        )

        async def on_transcribe(share: float) -> None:
            await progress(_CUT_FROM + int(share * _TRANSCRIBE_SHARE), "transcribe")

        return await self._subtitler.make(job, source, info, start_ms, out, on_transcribe)

    async def _cut(self, job: Job, attempt: int, progress: Progress, scratch: Path) -> ClipResult:
        # Read (by range, or from a download in `scratch`) only until the clip is cut.
        async with self._source(job, scratch, progress) as source:
            await progress(2, "probe")
            info = await probe(source)
            if info.duration_ms > self._max_source_ms:
                raise SourceTooLongError(
                    f"the source lasts {info.duration_ms / 1000:g} s; at most "
                    f"{self._max_source_ms / 1000:g} s (MAX_CLIP_INPUT_DURATION_SEC)"
                )

            # A row gets its default on insert; a Job made in memory and never stored has none yet.
            mode = CutMode(job.cut_mode or CutMode.EXACT)
            # Before anything is cut: a choice this source cannot take fails the job at once (for
            # an upload the API refused it already, unless the upload predates its probe facts).
            plan = plan_output(OutputOptions.from_json(job.output), info, mode)
            subtitles = scratch / "clip.srt" if job.with_subtitles else None
            made: SubtitlesMade | None = None
            video_filter = None
            cut_from = _CUT_FROM
            if subtitles is not None:  # before the cut: a missing sidecar fails at once
                # Before transcribing: no fonts to burn with fails at once, too.
                burn = burn_filter(subtitles, self._fonts_dir) if job.burn_subtitles else None
                made = await self._subtitles(job, mode, source, info, subtitles, progress)
                if made.source is SubtitleSource.SPEECH:
                    cut_from += _TRANSCRIBE_SHARE
                # Nothing to burn in an empty SRT (which FFmpeg's filter will not open).
                video_filter = burn if made.cues else None

            async def on_progress(stage: str, share: float) -> None:
                await progress(cut_from + int(share * (95 - cut_from)), stage)

            output = scratch / plan.filename
            cut = await cut_segment(
                source,
                info,
                job.start_ms,
                job.end_ms,
                output,
                on_progress=on_progress,
                timeout_seconds=self._timeout,
                video_filter=video_filter,
                mode=mode,
                plan=plan,
            )
        images = await self._images(output, plan, cut.duration_ms, info.hdr, progress, scratch)
        await progress(95, "store")
        video = await self._store(job, attempt, output)
        subtitles_key = await self._store(job, attempt, subtitles)
        thumbnail_key = await self._store(job, attempt, images.get(THUMBNAIL_NAME))
        preview = None if plan.preview is None else images.get(preview_name(plan.preview))
        preview_key = await self._store(job, attempt, preview)
        await progress(100, "store")
        assert video is not None
        return ClipResult(
            video,
            subtitles_key,
            cut.start_ms,
            thumbnail_key=thumbnail_key,
            preview_key=preview_key,
            subtitles=made,
        )

    async def _store(self, job: Job, attempt: int, made: Path | None) -> str | None:
        """Store a file the attempt made under its own name (clip.webm, poster.jpg, ...) in
        the attempt's result folder; None when there is none."""
        if made is None:
            return None
        key = result_key(job.id, attempt, made.name)
        await self._storage.put_file(key, made)
        return key

    async def _images(
        self,
        clip: Path,
        plan: OutputPlan,
        clip_ms: int,
        source_hdr: bool,
        progress: Progress,
        scratch: Path,
    ) -> dict[str, Path]:
        """The thumbnail and preview the plan asks for, by their result names, made from the
        clip: an HDR clip's tone-mapped (JPEG, GIF and WebP are SDR)."""
        made: dict[str, Path] = {}
        if plan.thumbnail_ms is None and plan.preview is None:
            return made
        await progress(95, "images")
        hdr = source_hdr and plan.ten_bit
        if plan.thumbnail_ms is not None:
            # The frame on screen then: the last one, should the clip end sooner than asked.
            made[THUMBNAIL_NAME] = scratch / THUMBNAIL_NAME
            await make_thumbnail(
                clip,
                plan.thumbnail_ms,
                made[THUMBNAIL_NAME],
                hdr=hdr,
                timeout_seconds=self._timeout,
            )
        if plan.preview is not None:
            name = preview_name(plan.preview)
            made[name] = scratch / name
            await make_preview(
                clip, plan.preview, clip_ms, made[name], hdr=hdr, timeout_seconds=self._timeout
            )
        return made
