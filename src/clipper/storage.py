"""Where clips and sources are kept: a Storage interface and its local-filesystem form.

Keys look like `results/{job id}/clip.mp4`; the clip processor writes them (next issue),
retention deletes them with their job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is fine, any other failure raises."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} points outside the data folder")
        return path

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)
