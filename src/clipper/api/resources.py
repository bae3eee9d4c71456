"""What the API holds for its lifetime, made once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..queue import QueueAdapter
from ..services.admin import SharedOverview
from ..services.live import JobChanges
from ..services.reading import SourceReading
from ..settings import Settings
from ..signing import Signer
from ..storage import Storage
from .auth import ApiKeys
from .metrics import ApiMetrics


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    queue: QueueAdapter
    keys: ApiKeys
    metrics: ApiMetrics
    storage: Storage
    reading: SourceReading
    # The overview the process's live admin streams share (routes/admin.py).
    overview: SharedOverview
    signer: Signer
    # The one LISTEN connection of the process, fanned out to the live streams.
    changes: JobChanges
