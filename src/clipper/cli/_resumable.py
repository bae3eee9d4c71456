"""The tus 1.0.0 client of `clipper clip`: a file sent to /api/uploads/resumable in one PATCH
that, when its connection drops, is resumed from where the server says it stands (HEAD),
after a short wait that doubles with each failure in a row; progress made since the last
failure starts the count again.

Written here on httpx, the command line's HTTP client, rather than with tuspy (the official
Python client, which works with this server): tuspy sets no timeout on its requests, so a
connection that dies without a reset hangs it for good; it retries after a fixed delay and
reports progress a chunk at a time; and it brings requests, aiohttp and tinydb, a dozen
packages, for what takes a page here. (Imported by the command when it runs: httpx is heavy.)"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ENDPOINT = "/api/uploads/resumable"
TUS = {"Tus-Resumable": "1.0.0"}
KEY_HEADER = "clipper-upload-key"
BLOCK_BYTES = 256 * 1024
# The waits before each try after a failure, in a row without progress; then it gives up.
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Answers that a later try may not get: the server still writing the dead connection's bytes
# (409, 423: HEAD then says where it stands), or briefly without its database or behind a
# proxy that lost it.
RETRY_STATUSES = frozenset({409, 423, 502, 503, 504})


class UploadRefusedError(Exception):
    """The API refused the upload (its answer says why): trying again would not help."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"the API answered {response.status_code}")
        self.response = response


class UploadFailedError(Exception):
    """The upload failed too many times in a row."""


class _TryAgainError(Exception):
    pass


def upload(
    client: httpx.Client,
    source: Path,
    *,
    on_progress: Callable[[int], None],
    on_event: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Upload `source` and answer its upload key. `on_progress` gets the bytes sent so far
    (they go back to what the server holds after a failure); `on_event` a line to show."""
    size = source.stat().st_size
    name = base64.b64encode(source.name.encode()).decode()
    created = client.post(
        ENDPOINT,
        headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
    )
    if created.status_code != 201:
        raise UploadRefusedError(created)
    url = created.headers["location"]
    offset = int(created.headers.get("upload-offset", 0))
    key: str | None = created.headers.get(KEY_HEADER)
    confirmed, failed_at, failures = offset, -1, 0
    while key is None:
        try:
            if failures:  # where the server stands after the failure
                offset, key = _head(client, url)
                confirmed = offset
                on_progress(offset)
                on_event(f"resuming the upload at {_megabytes(offset)} of {_megabytes(size)}")
                if key is not None:
                    break
            offset, key = _patch(client, url, source, offset, size, on_progress)
            if key is None and offset <= confirmed:
                raise _TryAgainError("the server took no bytes")
            confirmed = offset
        except (httpx.TransportError, _TryAgainError) as exc:
            if confirmed > failed_at:  # progress since the last failure: count afresh
                failed_at, failures = confirmed, 0
            failures += 1
            if failures > len(BACKOFF_SECONDS):
                raise UploadFailedError(
                    f"the upload failed {failures} times in a row, last: {_reason(exc)}"
                ) from exc
            wait = BACKOFF_SECONDS[failures - 1]
            on_event(f"upload interrupted ({_reason(exc)}); trying again in {wait:g} s")
            sleep(wait)
    return key


def _head(client: httpx.Client, url: str) -> tuple[int, str | None]:
    response = client.head(url, headers=TUS)
    _raise_unless(response, 200)
    return int(response.headers["upload-offset"]), response.headers.get(KEY_HEADER)


def _patch(
    client: httpx.Client,
    url: str,
    source: Path,
    offset: int,
    size: int,
    on_progress: Callable[[int], None],
) -> tuple[int, str | None]:
    """The rest of the file from `offset` in one PATCH: (the server's offset, the key once
    the upload is finished)."""

    def rest() -> Iterator[bytes]:
        sent = offset
        with source.open("rb") as file:
            file.seek(offset)
            while block := file.read(BLOCK_BYTES):
                yield block
                sent += len(block)
                on_progress(sent)

    response = client.patch(
        url,
        content=rest(),
        headers={
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(size - offset),  # sent as it is read, yet not chunked
        },
    )
    _raise_unless(response, 204)
    return int(response.headers["upload-offset"]), response.headers.get(KEY_HEADER)


def _raise_unless(response: httpx.Response, expected: int) -> None:
    if response.status_code == expected:
        return
    response.read()
    if response.status_code in RETRY_STATUSES:
        raise _TryAgainError(_answered(response))
    raise UploadRefusedError(response)


def _answered(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
