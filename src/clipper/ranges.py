"""The one interface of a source read by byte range: what object stores and URL sources offer
(storage_s3.py, fetch/download.py) and the worker's relay serves (fetch/relay.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class RangeReader(Protocol):
    """An object read by byte ranges, never whole: what the worker's relay (fetch/relay.py)
    serves to FFmpeg, which then fetches only the parts of a long source a clip needs."""

    @property
    def size(self) -> int: ...

    def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes [start, stop) of the object, in order (0 <= start < stop <= size)."""
        ...
