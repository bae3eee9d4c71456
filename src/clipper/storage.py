"""Where sources and clips are kept: a Storage interface and its local-filesystem form.

Keys: `sources/{upload id}/source` for uploads, `sources/batch-{batch id}/media` for the
media a batch of URL-source jobs shares, `results/{job id}/{attempt}/clip.mp4` for
clips (`clip.webm`, `clip.m4a`, ... by their container, with `clip.srt`, `poster.jpg` and
`preview.gif` or `preview.webp` beside them when asked). The API streams uploads in (or, with
an object store, signs a direct upload the client sends there itself), the worker reads
sources and writes clips, retention deletes them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import StorageFullError, is_disk_full
from .ranges import RangeReader

if TYPE_CHECKING:
    from .settings import Settings

# fullmatch only: `$` would also accept "up_…\n", a key naming the same upload under another
# spelling (retention would then delete an upload a queued job still needs).
_UPLOAD_KEY = re.compile(r"up_([0-9a-f]{32})")


class TooLargeError(Exception):
    """More bytes than allowed arrived."""


def new_upload_key() -> str:
    return f"up_{uuid.uuid4().hex}"


def source_key(upload_key: str) -> str:
    """Where an upload lives. Upload keys are opaque, so a job can name only a real upload."""
    match = _UPLOAD_KEY.fullmatch(upload_key)
    if match is None:
        raise ValueError("is not an upload key (up_ followed by 32 hex digits)")
    return f"sources/{match.group(1)}/source"


def subtitles_key(upload_key: str) -> str:
    """Where an uploaded .srt sidecar lives (same upload keys, another name)."""
    return source_key(upload_key).rsplit("/", 1)[0] + "/subtitles.srt"


_BATCH_FOLDER_PREFIX = "batch-"


def batch_media_key(batch_id: uuid.UUID) -> str:
    """Where the media of a batch's URL source is kept once fetched, for all its jobs. Not an
    upload: upload keys are 32 hex digits, which `batch-…` never is."""
    return f"sources/{_BATCH_FOLDER_PREFIX}{batch_id}/media"


def results_folder(job_id: uuid.UUID) -> str:
    """Every result of a job, of every attempt."""
    return f"results/{job_id}"


def result_key(job_id: uuid.UUID, attempt: int, name: str = "clip.mp4") -> str:
    """Where an attempt stores a result: a folder per attempt, so a stale attempt that still
    runs after losing its lease never overwrites the files of the attempt that won."""
    return f"{results_folder(job_id)}/{attempt}/{name}"


def is_result_key(key: str) -> bool:
    """Whether `key` (from a client) plainly names a file under results/. Refused rather than
    resolved: `.`, `..` and empty segments (an absolute path starts with one), backslashes,
    control characters such as NUL, anything not ASCII, and percent signs, which would be
    traversal encoded once more than the server decodes. No key Clipper makes has any."""
    segments = key.split("/")
    return (
        key.isascii()
        and key.isprintable()
        and "\\" not in key
        and "%" not in key
        and len(segments) > 1
        and segments[0] == "results"
        and all(segment not in ("", ".", "..") for segment in segments)
    )


@dataclass(frozen=True, slots=True)
class DirectUpload:
    """How a client sends an object's bytes straight to the store: one `method` request to
    `url` carrying exactly `headers`. The headers are signed into the URL, so the store
    refuses another content type or length; the URL itself is a credential until it expires
    (it names the access key id, never the secret), so it is answered, never logged."""

    url: str
    method: Literal["PUT"]
    headers: Mapping[str, str]


class Storage(Protocol):
    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes; None when there is no such object."""
        ...

    async def save(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Write the chunks as `key` (all or nothing); TooLargeError past `max_bytes`,
        StorageFullError when the disk is full."""
        ...

    async def put_file(self, key: str, source: Path) -> None:
        """Store a finished local file as `key` (moved when it can be; all or nothing);
        StorageFullError when the disk is full."""
        ...

    async def local_path(self, key: str, scratch: Path | None = None) -> Path:
        """A local file with the object's content, for FFmpeg and for serving it. A store
        that must copy the object (S3) downloads it into `scratch`, which the caller removes
        (required then); LocalStorage answers the stored file itself."""
        ...

    async def ranged(self, key: str) -> RangeReader | None:
        """The object read by range (S3), or None: its file is local (`local_path`)."""
        ...

    async def rename(self, key: str, new_key: str) -> None:
        """Store the object as `new_key` instead (all or nothing)."""
        ...

    async def link(self, key: str, expires_seconds: int, content_type: str) -> str | None:
        """A URL that serves the object directly for `expires_seconds` as `content_type`
        (S3: a presigned GET), or None: serve it through the API's signed /files links."""
        ...

    async def presigned_upload(
        self, key: str, content_type: str, size_bytes: int, expires_seconds: int
    ) -> DirectUpload | None:
        """A request that stores exactly `size_bytes` bytes of `content_type` as `key`, valid
        for `expires_seconds`, sent by the client to the store itself (S3: a presigned PUT);
        None: this storage takes uploads only through the API (POST /api/uploads)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is fine, any other failure raises."""
        ...

    async def delete_results(self, job_id: uuid.UUID) -> None:
        """Remove every result file of the job, the winning attempt's and any other's (an
        attempt killed after storing its clip leaves one); nothing there is fine."""
        ...

    async def uploads_older_than(self, seconds: float) -> list[str]:
        """Upload keys whose files were stored more than `seconds` ago."""
        ...

    async def delete_upload(self, upload_key: str) -> None:
        """Remove an upload with its files (source or subtitles)."""
        ...

    async def batches_with_media(self) -> list[uuid.UUID]:
        """The batches whose fetched media is stored (see `batch_media_key`)."""
        ...

    async def delete_batch_media(self, batch_id: uuid.UUID) -> None:
        """Remove a batch's fetched media; nothing there is fine."""
        ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} points outside the data folder")
        return path

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def size(self, key: str) -> int | None:
        return await asyncio.to_thread(_file_size, self.path(key))

    async def save(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        written = 0
        async with self._writing(key) as partial:
            with partial.open("wb") as file:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLargeError(f"more than {max_bytes} bytes")
                    await asyncio.to_thread(file.write, chunk)
        return written

    async def put_file(self, key: str, source: Path) -> None:
        async with self._writing(key) as partial:
            # A move to another file system copies, and a full disk stops it halfway.
            await asyncio.to_thread(shutil.move, source, partial)

    @contextlib.asynccontextmanager
    async def _writing(self, key: str) -> AsyncIterator[Path]:
        """A partial file beside `key`'s that becomes `key` when the block succeeds and is
        removed whatever happens, so no half-written object is ever left or seen. A full
        disk is StorageFullError: the cause would show a server path, so it is dropped."""
        target = self.path(key)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            yield partial
            await asyncio.to_thread(os.replace, partial, target)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise StorageFullError() from None
        finally:
            partial.unlink(missing_ok=True)

    async def local_path(self, key: str, scratch: Path | None = None) -> Path:
        return self.path(key)

    async def ranged(self, key: str) -> RangeReader | None:
        return None  # FFmpeg reads the stored file itself

    async def rename(self, key: str, new_key: str) -> None:
        await self.put_file(new_key, self.path(key))

    async def link(self, key: str, expires_seconds: int, content_type: str) -> str | None:
        return None  # served by the API from DATA_DIR (api/routes/files.py)

    async def presigned_upload(
        self, key: str, content_type: str, size_bytes: int, expires_seconds: int
    ) -> DirectUpload | None:
        return None  # no server but the API's own writes DATA_DIR: POST /api/uploads

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def delete_results(self, job_id: uuid.UUID) -> None:
        await asyncio.to_thread(_remove_tree, self.path(results_folder(job_id)))

    async def uploads_older_than(self, seconds: float) -> list[str]:
        return await asyncio.to_thread(self._uploads_older_than, seconds)

    def _uploads_older_than(self, seconds: float) -> list[str]:
        folder = self.root / "sources"
        if not folder.is_dir():
            return []
        cutoff = time.time() - seconds
        return [
            f"up_{upload.name}"
            for upload in folder.iterdir()
            if upload.is_dir()
            and _UPLOAD_KEY.fullmatch(f"up_{upload.name}")
            and upload.stat().st_mtime < cutoff
        ]

    async def delete_upload(self, upload_key: str) -> None:
        folder = self.path(source_key(upload_key)).parent
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def batches_with_media(self) -> list[uuid.UUID]:
        return await asyncio.to_thread(self._batches_with_media)

    def _batches_with_media(self) -> list[uuid.UUID]:
        folder = self.root / "sources"
        if not folder.is_dir():
            return []
        found: list[uuid.UUID] = []
        for batch in folder.glob(f"{_BATCH_FOLDER_PREFIX}*"):
            with contextlib.suppress(ValueError):  # not a folder this storage made
                found.append(uuid.UUID(batch.name.removeprefix(_BATCH_FOLDER_PREFIX)))
        return found

    async def delete_batch_media(self, batch_id: uuid.UUID) -> None:
        folder = self.path(batch_media_key(batch_id)).parent
        await asyncio.to_thread(_remove_tree, folder)


def storage_for(settings: Settings) -> Storage:
    """The one place a process's Storage is chosen: STORAGE_URL=s3://bucket/prefix for an
    S3-compatible store, otherwise the files under DATA_DIR (the embedded default)."""
    if settings.storage_url is None:
        return LocalStorage(settings.data_dir)
    from .storage_s3 import S3Storage  # boto3 is imported only when it is used

    return S3Storage.from_url(settings.storage_url, addressing_style=settings.s3_addressing_style)


def _file_size(path: Path) -> int | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def _remove_tree(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
