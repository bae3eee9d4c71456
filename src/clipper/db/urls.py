"""One database URL, in the two spellings its clients want."""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def libpq_url(url: str) -> str:
    """For psycopg and libpq: `postgresql://...` (any SQLAlchemy driver suffix removed)."""
    if not _SCHEME.match(url):
        raise ValueError("must start with postgresql:// (or postgres://, postgresql+psycopg://)")
    return _SCHEME.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str) -> str:
    """For SQLAlchemy and Alembic, on the psycopg 3 driver: `postgresql+psycopg://...`."""
    return _SCHEME.sub("postgresql+psycopg://", libpq_url(url), count=1)
