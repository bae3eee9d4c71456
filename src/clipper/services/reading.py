"""How a process hands a source to FFmpeg and the probe: read by range through the process's
loopback relay (fetch/relay.py) when the store reads by range (S3) or a URL's server allows,
so a short clip of a long source moves only what the clip needs; otherwise a local file (the
stored file itself with LocalStorage, a download into the attempt's scratch folder else)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ..fetch.relay import MediaRelay
from ..media.inputs import MediaInput
from ..ranges import RangeReader
from ..storage import Storage


class SourceReading:
    def __init__(self, storage: Storage, *, by_range: bool) -> None:
        """`by_range`: SOURCE_RANGE_READS (off: every source is downloaded whole first)."""
        self._storage = storage
        self._relay = MediaRelay() if by_range else None

    @property
    def by_range(self) -> bool:
        return self._relay is not None

    @property
    def bytes_relayed(self) -> int:
        """Bytes of sources FFmpeg and the probe have read by range so far."""
        return 0 if self._relay is None else self._relay.bytes_served

    @contextlib.asynccontextmanager
    async def stored(self, key: str, scratch: Path | None) -> AsyncIterator[MediaInput]:
        """The stored object `key` while the block runs. `scratch`: where a store that must
        copy it (S3 with range reads off) downloads it (None: only LocalStorage may)."""
        reader = None if self._relay is None else await self._storage.ranged(key)
        if reader is None:
            yield await self._storage.local_path(key, scratch)
            return
        async with self.relayed(reader) as url:
            yield url

    @contextlib.asynccontextmanager
    async def relayed(self, reader: RangeReader) -> AsyncIterator[str]:
        """`reader` served by range while the block runs (needs `by_range`)."""
        if self._relay is None:
            raise RuntimeError("range reads are off (SOURCE_RANGE_READS=false)")
        async with self._relay.serving(reader) as url:
            yield url

    async def aclose(self) -> None:
        if self._relay is not None:
            await self._relay.aclose()
