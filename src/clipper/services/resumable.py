"""Resumable uploads in progress (the tus protocol of api/routes/resumable_uploads.py): each is
a folder `DATA_DIR/resumable/{id}/` holding the bytes received so far (`data`), a small JSON
record (`info.json`: owner, length, durable offset, expiry, and once finished the upload key
it became) and a lock file.

The state is kept in files beside the bytes, not in a table: an offset is only true of the
bytes it describes, and the two are updated together on one disk; every API process sharing
DATA_DIR sees the same records and the same locks (flock); and nothing here needs the
database until the last byte arrives, when the finished file becomes an ordinary upload
(probed and recorded by the upload route's own code).

Durability: bytes are fsync'd before the offset that covers them is recorded (the record is
replaced atomically, then its folder fsync'd), so an offset reported never exceeds what is on
disk. A write starts by cutting the data back to the recorded offset (a crash can leave
unrecorded bytes after it). One request writes an upload at a time (an exclusive flock); a
request that wants it while another holds it asks the holder to stop (a `release` marker the
holder looks for twice a second), as a client resuming after a dropped connection does while
the server may still be reading the dead one. A body that stalls for IDLE_SECONDS is ended
the same way. Expired uploads are removed lazily: on access, and by `sweep()`, which every
creation runs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import StorageFullError, is_disk_full

logger = logging.getLogger("clipper.uploads")

# An upload unfinished this long after its last write (or finished this long ago) is removed.
EXPIRY_SECONDS = 24 * 3600
# A body that sends nothing for this long is ended (what arrived is kept): a dead connection
# the server cannot see as closed must not hold the upload forever.
IDLE_SECONDS = 30.0
# How long a request waits for another to let go of an upload before answering "busy".
LOCK_WAIT_SECONDS = 10.0
# Bytes received between two durable checkpoints (fsync, then the offset recorded): at most
# this much is received again after a crash of the server.
CHECKPOINT_BYTES = 8 * 2**20
# Bytes gathered before a write (the server hands the body over in pieces of about 64 KiB).
WRITE_BYTES = 2**20
# How often a writer, or a waiting request, looks at the release marker and the clock.
POLL_SECONDS = 0.5
_LOCK_RETRY_SECONDS = 0.05

_ID = re.compile(r"[0-9a-f]{32}")
_VERSION = 1


class PastLengthError(Exception):
    """The body goes past the upload's length (nothing of the chunk that did is kept)."""


class UploadBusyError(Exception):
    """Another request is still writing this upload."""


@dataclass(slots=True)
class Partial:
    """An upload's record. `offset` counts the bytes durably stored."""

    id: str
    tenant: str
    length: int
    offset: int
    expires_at: float  # Unix time
    metadata: str = ""  # the Upload-Metadata header as the client sent it
    filename: str | None = None  # from the metadata, for people only
    upload_key: str | None = None  # chosen when the last byte arrives
    finished: bool = False  # probed and recorded as upload `upload_key`

    @property
    def complete(self) -> bool:
        return self.offset == self.length


def partial_uploads(data_dir: Path) -> PartialUploads:
    """The resumable uploads of a deployment: under DATA_DIR, beside the stored uploads they
    become (a finished one is moved, not copied, into place)."""
    return PartialUploads(data_dir / "resumable")


class PartialUploads:
    """The resumable uploads under `root`. Holds no state of its own: any number of these,
    in any number of processes, over the same folder agree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Read when made, not when defined: tests shorten them.
        self.expiry_seconds = EXPIRY_SECONDS
        self.idle_seconds = IDLE_SECONDS
        self.lock_wait_seconds = LOCK_WAIT_SECONDS

    # --- records ---------------------------------------------------------------------------

    def folder(self, upload_id: str) -> Path:
        if not _ID.fullmatch(upload_id):
            raise ValueError("not a resumable upload id")
        return self.root / upload_id

    def data_path(self, upload_id: str) -> Path:
        return self.folder(upload_id) / "data"

    async def create(
        self, tenant: str, length: int, metadata: str = "", filename: str | None = None
    ) -> Partial:
        partial = Partial(
            id=uuid.uuid4().hex,
            tenant=tenant,
            length=length,
            offset=0,
            expires_at=time.time() + self.expiry_seconds,
            metadata=metadata,
            filename=filename,
        )
        await asyncio.to_thread(self._create, partial)
        return partial

    def _create(self, partial: Partial) -> None:
        folder = self.folder(partial.id)
        try:
            folder.mkdir(parents=True)
            self.data_path(partial.id).touch()
            self._write_record(partial)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if is_disk_full(exc):
                raise StorageFullError() from None
            raise

    async def get(self, upload_id: str) -> Partial | None:
        """The upload's record; None when there is none, or it has expired (then it goes)."""
        if not _ID.fullmatch(upload_id):
            return None
        partial = await asyncio.to_thread(self._read_record, upload_id)
        if partial is not None and partial.expires_at < time.time():
            await asyncio.to_thread(self._remove_unless_locked, upload_id)
            return None
        return partial

    async def save(self, partial: Partial) -> None:
        """Record `partial` as it is (call it while holding the upload: see `writing`)."""
        await asyncio.to_thread(self._write_record, partial)

    def _read_record(self, upload_id: str) -> Partial | None:
        try:
            fields = json.loads((self.folder(upload_id) / "info.json").read_text())
            fields.pop("version", None)
            return Partial(**fields)
        except (OSError, ValueError, TypeError):
            return None  # missing, or half made by a crash during its creation

    def _write_record(self, partial: Partial) -> None:
        folder = self.folder(partial.id)
        temporary = folder / f".info.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("w") as file:
                json.dump({"version": _VERSION, **asdict(partial)}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, folder / "info.json")
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_folder(folder)

    async def delete(self, upload_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.folder(upload_id), True)

    async def reserved_bytes(self, tenant: str) -> int:
        """The lengths of the tenant's unfinished uploads: room they will take when done."""
        return sum(
            partial.length
            for partial in await asyncio.to_thread(self._records)
            if partial.tenant == tenant and not partial.finished
        )

    async def sweep(self) -> int:
        """Remove the expired uploads (and folders a crash left without a record, once as
        old); one being written is left for the next sweep. Returns how many went."""
        return await asyncio.to_thread(self._sweep)

    def _records(self) -> list[Partial]:
        now = time.time()
        found = []
        for upload_id in self._ids():
            partial = self._read_record(upload_id)
            if partial is not None and partial.expires_at >= now:
                found.append(partial)
        return found

    def _ids(self) -> list[str]:
        try:
            return [entry.name for entry in self.root.iterdir() if _ID.fullmatch(entry.name)]
        except FileNotFoundError:
            return []

    def _sweep(self) -> int:
        now = time.time()
        removed = 0
        for upload_id in self._ids():
            partial = self._read_record(upload_id)
            if partial is None:
                with contextlib.suppress(OSError):
                    made = self.folder(upload_id).stat().st_mtime
                    if made + self.expiry_seconds < now and self._remove_unless_locked(upload_id):
                        removed += 1
            elif partial.expires_at < now and self._remove_unless_locked(upload_id):
                removed += 1
        return removed

    def _remove_unless_locked(self, upload_id: str) -> bool:
        try:
            descriptor = os.open(self.folder(upload_id) / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False  # gone already
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        try:
            shutil.rmtree(self.folder(upload_id), ignore_errors=True)
        finally:
            os.close(descriptor)
        return True

    # --- writing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self, upload_id: str) -> AsyncIterator[Partial | None]:
        """Hold the upload for this request alone: its fresh record (None once it is gone or
        expired). A holder is asked to let go; UploadBusyError when it has not within
        LOCK_WAIT_SECONDS (another process whose client is still sending, say)."""
        folder = self.folder(upload_id)
        try:
            descriptor = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            yield None
            return
        try:
            await self._lock(descriptor, folder / "release")
            partial = await self.get(upload_id)
            yield partial
        finally:
            os.close(descriptor)  # lets go of the lock

    async def _lock(self, descriptor: int, release: Path) -> None:
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UploadBusyError() from None
                # Again and again: the newest request is the one served.
                await asyncio.to_thread(_touch, release)
                await asyncio.sleep(_LOCK_RETRY_SECONDS)
        await asyncio.to_thread(release.unlink, missing_ok=True)

    async def append(self, partial: Partial, chunks: AsyncIterator[bytes]) -> None:
        """Write `chunks` at the upload's offset (hold it first: see `writing`), until they
        end, stall for `idle_seconds` or another request asks for the upload; `partial.offset`
        is then what is durably stored, and recorded. PastLengthError past its length,
        StorageFullError when the disk is full; what came before is kept either way."""
        data = await asyncio.to_thread(self._open_at, partial)
        try:
            await self._append(partial, data, chunks)
        finally:
            data.close()

    def _open_at(self, partial: Partial) -> BinaryIO:
        data = self.data_path(partial.id).open("r+b")
        data.truncate(partial.offset)  # unrecorded bytes a crash left after it
        data.seek(partial.offset)
        return data

    async def _append(self, partial: Partial, data: BinaryIO, chunks: AsyncIterator[bytes]) -> None:
        release = self.folder(partial.id) / "release"
        written = 0  # written after partial.offset; not yet durable
        pending = bytearray()
        checked = time.monotonic()
        try:
            while True:
                chunk = await self._next(chunks, release)
                if chunk is None:
                    break
                if partial.offset + written + len(pending) + len(chunk) > partial.length:
                    raise PastLengthError()
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    await asyncio.to_thread(data.write, pending)
                    written += len(pending)
                    pending = bytearray()
                    if written >= CHECKPOINT_BYTES:
                        await asyncio.to_thread(self._checkpoint, partial, data, written)
                        written = 0
                if time.monotonic() - checked > POLL_SECONDS:
                    checked = time.monotonic()
                    if await asyncio.to_thread(release.exists):
                        break
            await asyncio.to_thread(data.write, pending)
            written += len(pending)
            await asyncio.to_thread(self._checkpoint, partial, data, written)
        except OSError as exc:
            self._keep_durable(partial, data, written)
            if is_disk_full(exc):
                raise StorageFullError() from None
            raise
        except BaseException:
            # Past the length, or the request is being cancelled (the server stops): what was
            # written is made durable here and now, without awaiting anything.
            self._keep_durable(partial, data, written)
            raise

    def _keep_durable(self, partial: Partial, data: BinaryIO, written: int) -> None:
        try:
            self._checkpoint(partial, data, written)
        except OSError as exc:
            logger.warning("resumable upload %s: could not record its offset: %s", partial.id, exc)

    def _checkpoint(self, partial: Partial, data: BinaryIO, written: int) -> None:
        data.flush()
        os.fsync(data.fileno())  # the bytes first: the offset must never claim more
        partial.offset += written
        partial.expires_at = time.time() + self.expiry_seconds
        self._write_record(partial)

    async def _next(self, chunks: AsyncIterator[bytes], release: Path) -> bytes | None:
        """The next chunk; None at the end of the body, after `idle_seconds` without one, or
        when another request asks for the upload meanwhile."""
        waiting = asyncio.ensure_future(anext(chunks))
        idle_until = time.monotonic() + self.idle_seconds
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=POLL_SECONDS)
                if done:
                    try:
                        return waiting.result()
                    except StopAsyncIteration:
                        return None
                if time.monotonic() > idle_until:
                    logger.info("a resumable upload's body stalled; its request ends")
                    return None
                if await asyncio.to_thread(release.exists):
                    return None
        finally:
            waiting.cancel()  # the body is read no more (when it is not over already)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.touch()


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
