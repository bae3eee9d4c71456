"""The application's database engine and sessions (SQLAlchemy 2, async, on psycopg 3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ..queue import ConnectionTimeouts, Pooler, connection_kwargs
from .urls import sqlalchemy_url


def create_engine(
    database_url: str,
    pool_size: int = 10,
    timeouts: ConnectionTimeouts | None = None,
    *,
    pooler: Pooler | None = None,
) -> AsyncEngine:
    """One engine per process, made at start-up (never at import time). Its connections have
    the same deadlines as the queue engine's (TCP keepalives, server-side statement, lock and
    idle-in-transaction timeouts), so a half-open connection cannot hold a row lock or a
    request forever. With `pooler="transaction"` (DATABASE_POOLER) nothing is prepared and no
    startup option is sent, as for the queue's connections: the queue adapter's start() makes
    the server-side timeouts the role's defaults, which these sessions get too."""
    timeouts = timeouts or ConnectionTimeouts()
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        pool_pre_ping=True,  # a request after a database restart gets a fresh connection
        pool_timeout=timeouts.statement_seconds,
        connect_args={**connection_kwargs(timeouts, pooler), "application_name": "clipper"},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: a request reads the job it just wrote.
    return async_sessionmaker(engine, expire_on_commit=False)
