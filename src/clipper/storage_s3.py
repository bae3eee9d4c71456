"""The Storage in any S3-compatible object store: STORAGE_URL=s3://bucket/prefix.

Only the part of the S3 API that Amazon S3, Cloudflare R2 and MinIO all honour is used:
PutObject, GetObject (whole and by range), HeadObject, CopyObject, DeleteObject(s),
ListObjectsV2, multipart upload (Create/UploadPart/Complete/Abort), and presigned GET and PUT
URLs (no presigned POST: R2 has none). The endpoint, region and credentials are the S3
client's own: AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY (or any other source boto3 reads, such as an instance role).

boto3 because it is the reference S3 client, kept by AWS and what R2 and MinIO document
and test against; its calls block, so each runs in a thread (`asyncio.to_thread`). An object
store's latency is dominated by the network, not by thread hand-offs, and aiobotocore pins
exact botocore versions and lags boto3's transfer manager (multipart upload_file), which
Clipper uses for results.

Errors from the store become StorageUnavailableError with the operation and the S3 error
code only: botocore's own messages may name the endpoint or the request, never shown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import StorageUnavailableError
from .ranges import RangeReader
from .storage import (
    _BATCH_FOLDER_PREFIX,
    _UPLOAD_KEY,
    DirectUpload,
    TooLargeError,
    batch_media_key,
    results_folder,
    source_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

# S3 refuses multipart parts under 5 MiB (but the last); 8 MiB is boto3's own default.
PART_SIZE = 8 * 2**20
# A ranged read asks at most this much per GetObject, read whole in one thread call: what
# FFmpeg asks at a time (media/inputs.py), aligned to the relay's blocks, in one request.
READ_WINDOW = 2 * 2**20
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_URL = re.compile(r"^s3://([^/]+)/?(.*)$")


class S3Storage:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
        part_size: int = PART_SIZE,
    ) -> None:
        if part_size < 5 * 2**20:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._part_size = part_size
        # A client is thread-safe (a boto3 Session is not: one of its own, made here).
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            # botocore reads AWS_DEFAULT_REGION itself; AWS_REGION is the newer SDKs' name.
            region_name=os.environ.get("AWS_REGION") or None,
            config=Config(
                s3={"addressing_style": addressing_style},
                retries={"mode": "standard"},
                signature_version="s3v4",
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, use_threads=False
        )

    @classmethod
    def from_url(
        cls, url: str, *, addressing_style: Literal["auto", "path", "virtual"] = "auto"
    ) -> S3Storage:
        match = _URL.match(url)
        if match is None:
            raise ValueError("STORAGE_URL must be s3://bucket or s3://bucket/prefix")
        return cls(match.group(1), match.group(2), addressing_style=addressing_style)

    def object_key(self, key: str) -> str:
        """The object's name in the bucket: `key` under the prefix. Refused like LocalStorage
        refuses a path outside its folder: no empty, `.` or `..` segments."""
        if any(segment in ("", ".", "..") for segment in key.split("/")):
            raise ValueError(f"storage key {key!r} is not a plain key")
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, operation: str, function: Callable[..., T], **kwargs: Any) -> T:
        def call() -> T:
            with _mapped(operation):
                return function(**kwargs)

        return await asyncio.to_thread(call)

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(
                self._client.head_object, Bucket=self.bucket, Key=self.object_key(key)
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise _unavailable("HeadObject", exc) from None
        except BotoCoreError as exc:
            raise _unavailable("HeadObject", exc) from None
        return int(head["ContentLength"])

    async def save(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Multipart upload as the chunks arrive, a part each `part_size` bytes (one PutObject
        when the whole fits in one part); aborted on TooLargeError or any failure, so no
        part is left billed and no object is ever partial."""
        name = self.object_key(key)
        written = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise TooLargeError(f"more than {max_bytes} bytes")
                buffer += chunk
                while len(buffer) >= self._part_size:
                    if upload_id is None:
                        created = await self._call(
                            "CreateMultipartUpload",
                            self._client.create_multipart_upload,
                            Bucket=self.bucket,
                            Key=name,
                        )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self._part_size])
                    del buffer[: self._part_size]
                    parts.append(await self._upload_part(name, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await self._call(
                    "PutObject",
                    self._client.put_object,
                    Bucket=self.bucket,
                    Key=name,
                    Body=bytes(buffer),
                )
                return written
            if buffer:  # the last part may be smaller
                last = await self._upload_part(name, upload_id, len(parts) + 1, bytes(buffer))
                parts.append(last)
            await self._call(
                "CompleteMultipartUpload",
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):  # the first failure is the one to tell
                    await self._call(
                        "AbortMultipartUpload",
                        self._client.abort_multipart_upload,
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                    )
            raise
        return written

    async def _upload_part(
        self, name: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        """Part `number` of a multipart upload; what CompleteMultipartUpload needs of it."""
        answer = await self._call(
            "UploadPart",
            self._client.upload_part,
            Bucket=self.bucket,
            Key=name,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def put_file(self, key: str, source: Path) -> None:
        """boto3's transfer manager: one PutObject, or a multipart upload past `part_size`
        that it aborts itself when a part fails. Then the local file is removed, as
        LocalStorage moves it: callers (a resumable upload's data) count on it being gone."""
        await self._call(
            "PutObject",
            self._client.upload_file,
            Filename=str(source),
            Bucket=self.bucket,
            Key=self.object_key(key),
            Config=self._transfer,
        )
        await asyncio.to_thread(source.unlink, missing_ok=True)

    async def ranged(self, key: str) -> RangeReader:
        name = self.object_key(key)
        head = await self._call(
            "HeadObject", self._client.head_object, Bucket=self.bucket, Key=name
        )
        return _ObjectRanges(self, name, int(head["ContentLength"]))

    async def rename(self, key: str, new_key: str) -> None:
        """CopyObject (one request up to 5 GB: only small sidecars are renamed), then delete."""
        await self._call(
            "CopyObject",
            self._client.copy_object,
            Bucket=self.bucket,
            Key=self.object_key(new_key),
            CopySource={"Bucket": self.bucket, "Key": self.object_key(key)},
        )
        await self.delete(key)

    async def local_path(self, key: str, scratch: Path | None = None) -> Path:
        """The whole object downloaded into `scratch` (a .part renamed once complete): for
        small files (subtitles); FFmpeg reads sources by range (`ranged`)."""
        if scratch is None:
            raise ValueError("S3Storage.local_path needs a scratch folder to download into")
        target = scratch / f"stored-{key.replace('/', '-')}"
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            await self._call(
                "GetObject",
                self._client.download_file,
                Bucket=self.bucket,
                Key=self.object_key(key),
                Filename=str(partial),
                Config=self._transfer,
            )
            await asyncio.to_thread(os.replace, partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    async def link(self, key: str, expires_seconds: int, content_type: str) -> str | None:
        """A presigned GET (signed locally, no request), served as `content_type`."""
        return await self._call(
            "presign GetObject",
            self._client.generate_presigned_url,
            ClientMethod="get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_seconds,
        )

    async def presigned_upload(
        self, key: str, content_type: str, size_bytes: int, expires_seconds: int
    ) -> DirectUpload:
        """A presigned PutObject (signed locally, no request) with Content-Type and
        Content-Length among its signed headers: S3, R2 and MinIO then refuse a request with
        another type or length (SignatureDoesNotMatch), so the client cannot store more than
        it declared. A PUT, not a presigned POST policy (whose content-length-range would
        allow "up to"): R2 has no POST Object, and one PUT takes up to 5 GB, past any
        MAX_INPUT_MB a single request is sensible for."""
        url = await self._call(
            "presign PutObject",
            self._client.generate_presigned_url,
            ClientMethod="put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ContentType": content_type,
                "ContentLength": size_bytes,
            },
            ExpiresIn=expires_seconds,
        )
        headers = {"Content-Type": content_type, "Content-Length": str(size_bytes)}
        return DirectUpload(url=url, method="PUT", headers=headers)

    async def delete(self, key: str) -> None:
        await self._call(
            "DeleteObject",
            self._client.delete_object,
            Bucket=self.bucket,
            Key=self.object_key(key),
        )

    async def delete_results(self, job_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._delete_under, results_folder(job_id))

    async def uploads_older_than(self, seconds: float) -> list[str]:
        return await asyncio.to_thread(self._uploads_older_than, seconds)

    def _uploads_older_than(self, seconds: float) -> list[str]:
        """By each upload folder's newest object, as LocalStorage goes by the folder's
        modification time (which a new file in it changes)."""
        newest: dict[str, float] = {}
        for item in self._objects("sources/"):
            folder = item["Key"].removeprefix(self._under("sources/")).split("/", 1)[0]
            if _UPLOAD_KEY.fullmatch(f"up_{folder}"):
                stored = item["LastModified"].timestamp()
                newest[folder] = max(stored, newest.get(folder, stored))
        cutoff = time.time() - seconds
        return [f"up_{folder}" for folder, stored in newest.items() if stored < cutoff]

    async def delete_upload(self, upload_key: str) -> None:
        await asyncio.to_thread(self._delete_under, source_key(upload_key).rsplit("/", 1)[0])

    async def batches_with_media(self) -> list[uuid.UUID]:
        return await asyncio.to_thread(self._batches_with_media)

    def _batches_with_media(self) -> list[uuid.UUID]:
        found: set[uuid.UUID] = set()
        start = self._under(f"sources/{_BATCH_FOLDER_PREFIX}")
        for item in self._objects(f"sources/{_BATCH_FOLDER_PREFIX}"):
            folder = item["Key"].removeprefix(start).split("/", 1)[0]
            with contextlib.suppress(ValueError):  # not a folder this storage made
                found.add(uuid.UUID(folder))
        return sorted(found)

    async def delete_batch_media(self, batch_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._delete_under, batch_media_key(batch_id).rsplit("/", 1)[0])

    def _under(self, key_prefix: str) -> str:
        return f"{self.prefix}/{key_prefix}" if self.prefix else key_prefix

    def _objects(self, key_prefix: str) -> Iterator[Any]:
        """Every object whose key starts with `key_prefix` (ListObjectsV2, page by page)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._under(key_prefix)
        )
        with _mapped("ListObjectsV2"):
            for page in pages:
                yield from page.get("Contents", [])

    def _delete_under(self, folder: str) -> None:
        """Every object of `folder` (a key without the trailing slash); none is fine."""
        names = [item["Key"] for item in self._objects(f"{folder}/")]
        for start in range(0, len(names), 1000):  # DeleteObjects takes 1000 at most
            batch = names[start : start + 1000]
            with _mapped("DeleteObjects"):
                answer = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
                )
            if answer.get("Errors"):
                codes = sorted({error.get("Code", "?") for error in answer["Errors"]})
                raise StorageUnavailableError(f"object storage DeleteObjects failed: {codes}")


class _ObjectRanges:
    """An object read by ranged GetObjects of at most READ_WINDOW bytes each."""

    def __init__(self, storage: S3Storage, name: str, size: int) -> None:
        self._storage = storage
        self._name = name
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        for window in range(start, stop, READ_WINDOW):
            yield await self._storage._call(
                "GetObject", self._read, first=window, last=min(stop, window + READ_WINDOW) - 1
            )

    def _read(self, first: int, last: int) -> bytes:
        """Bytes [first, last] in one thread call, the body closed in the thread that read
        it: a cancelled attempt leaves at most this one window's read to finish."""
        answer = self._storage._client.get_object(
            Bucket=self._storage.bucket, Key=self._name, Range=f"bytes={first}-{last}"
        )
        with contextlib.closing(answer["Body"]) as body:
            data: bytes = body.read()
        if len(data) != last - first + 1:
            raise StorageUnavailableError("object storage GetObject failed: a short range")
        return data


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(operation, exc) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(operation: str, exc: ClientError | BotoCoreError) -> StorageUnavailableError:
    """The operation and S3's error code (AccessDenied, NoSuchBucket, …) or the kind of
    client failure (EndpointConnectionError, NoCredentialsError): no URL, key or message."""
    why = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return StorageUnavailableError(f"object storage {operation} failed: {why or 'unknown'}")
