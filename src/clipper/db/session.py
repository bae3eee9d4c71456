"""The application's database engine and sessions (SQLAlchemy 2, async, on psycopg 3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .urls import sqlalchemy_url


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """One engine per process, made at start-up (never at import time)."""
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        pool_pre_ping=True,  # a request after a database restart gets a fresh connection
        connect_args={"application_name": "clipper"},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: a request reads the job it just wrote.
    return async_sessionmaker(engine, expire_on_commit=False)
