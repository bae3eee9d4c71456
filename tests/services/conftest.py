"""A database, its sessions and a PostgreSQL queue for the service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clipper.db.session import create_engine, session_factory
from clipper.queue import QueueAdapter
from tests.queue.conftest import fast_config


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def queue(db_url: str) -> AsyncIterator[QueueAdapter]:
    adapter = QueueAdapter(db_url, fast_config(backoff_base_ms=50, max_attempts=3))
    await adapter.start()
    yield adapter
    await adapter.shutdown(grace_seconds=0)
