"""The `file` field of a multipart/form-data upload, read straight off the request body.

Starlette's `request.form()` spools every file past 1 MB to the system's temporary folder,
whole, before the route sees a byte: an upload then costs its size twice on disk and cannot
be refused early. Here the body is parsed as it arrives (python-multipart's push parser, the
one Starlette itself uses) and the file's bytes go on to storage chunk by chunk, so the size
and quota checks stop a too-large upload as soon as it crosses the line."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..errors import ValidationFailedError

FIELD = "file"
# Form fields before the file, and header lines per part: a form is small; refuse a flood.
_MAX_PARTS = 5


class FileField:
    """Iterate `chunks()` once to read the file field's content."""

    def __init__(self, request: Request) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise ValidationFailedError.field(FIELD, "is required (multipart form field)")
        self._request = request
        self._pending: collections.deque[bytes] = collections.deque()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self._files = 0
        self._parts = 0
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begins,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_ends,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_ends,
            },
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for body in self._request.stream():
                self._parser.write(body)
                while self._pending:
                    yield self._pending.popleft()
            self._parser.finalize()
        except MultipartParseError:
            raise ValidationFailedError.field(FIELD, "the form data is malformed") from None
        while self._pending:
            yield self._pending.popleft()
        if self._files == 0:
            raise ValidationFailedError.field(FIELD, "is required (multipart form field)")

    def _part_begins(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise ValidationFailedError.field(FIELD, "send the file alone, as one form field")
        self._headers = {}

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_ends(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._in_file = options.get(b"name") == FIELD.encode()
        if self._in_file:
            self._files += 1
            if self._files > 1:
                raise ValidationFailedError.field(FIELD, "send one file per upload")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(bytes(data[start:end]))

    def _part_ends(self) -> None:
        self._in_file = False
