"""The tus 1.0.0 protocol's pieces for api/routes/resumable_uploads.py: its headers, its errors
(each an error envelope like every other), and one piece of wiring for create_app: the
Tus-Resumable header on every answer under PREFIX."""

from __future__ import annotations

import base64
import binascii
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ClipperError

PREFIX = "/api/uploads/resumable"
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
# The final upload's key, on the last PATCH's answer and on every HEAD after it (tus forbids
# a body on a 204, so the key cannot come as UploadRead's JSON).
UPLOAD_KEY_HEADER = "Clipper-Upload-Key"
# Upload-Metadata, as sent, is echoed by HEAD: bounded, and plain ASCII.
MAX_METADATA_CHARS = 4096
MAX_FILENAME_CHARS = 255

_NUMBER = re.compile(r"[0-9]{1,19}")
_METADATA_KEY = re.compile(r"[!-+\--~]+")  # printable ASCII but the space and the comma


class TusVersionError(ClipperError):
    """This server speaks tus 1.0.0: send `Tus-Resumable: 1.0.0`."""

    code = "TUS_VERSION_UNSUPPORTED"
    status = 412


class InvalidTusHeaderError(ClipperError):
    """A tus header is missing or malformed (`details` names it)."""

    code = "INVALID_HEADER"
    status = 400

    @classmethod
    def header(cls, name: str, message: str) -> InvalidTusHeaderError:
        return cls(f"{name}: {message}", [{"field": name, "message": message}])


class OffsetMismatchError(ClipperError):
    """Upload-Offset is not the upload's offset: ask HEAD for it and resume from there."""

    code = "UPLOAD_OFFSET_MISMATCH"
    status = 409


class UnsupportedBodyError(ClipperError):
    """The bytes of an upload come as `Content-Type: application/offset+octet-stream`."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class UploadLockedError(ClipperError):
    """Another request is still writing this upload; try again shortly."""

    code = "UPLOAD_BUSY"
    status = 423


def check_version(headers: Headers) -> None:
    if headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionError()


def number_header(headers: Headers, name: str) -> int:
    """A required header holding a non-negative whole number."""
    value = headers.get(name)
    if value is None:
        raise InvalidTusHeaderError.header(name, "is required")
    if not _NUMBER.fullmatch(value):
        raise InvalidTusHeaderError.header(name, "must be a whole number of bytes")
    return int(value)


def metadata_header(headers: Headers) -> tuple[str, str | None]:
    """Upload-Metadata as sent ("" without one) and the filename it names, if any: the one
    key Clipper reads, for display only (an undecodable or odd one is dropped, not refused)."""
    raw = headers.get("upload-metadata", "").strip()
    if not raw:
        return "", None
    name = "Upload-Metadata"
    if len(raw) > MAX_METADATA_CHARS or not raw.isascii() or not raw.isprintable():
        raise InvalidTusHeaderError.header(name, f"at most {MAX_METADATA_CHARS} ASCII characters")
    filename = None
    for pair in raw.split(","):
        key, _, value = pair.strip().partition(" ")
        if not _METADATA_KEY.fullmatch(key):
            raise InvalidTusHeaderError.header(name, "write it as `key base64value,key2 …`")
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            message = f"the value of {key!r} is not base64"
            raise InvalidTusHeaderError.header(name, message) from None
        if key == "filename":
            with_name = decoded.decode(errors="replace")
            if with_name.isprintable() and 0 < len(with_name) <= MAX_FILENAME_CHARS:
                filename = with_name
    return raw, filename


class TusHeadersMiddleware:
    """`Tus-Resumable: 1.0.0` on every answer under PREFIX, errors included (they come from
    the app's error handlers, outside the routes), and `Tus-Version` on a 412."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _under_prefix(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"tus-resumable", TUS_VERSION.encode()))
                if message["status"] == TusVersionError.status:
                    headers.append((b"tus-version", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
