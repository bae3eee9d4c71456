"""A private cluster with a small max_connections and a real PgBouncer in transaction pooling
mode in front of it, migrated through the pooler. Skipped where either is not installed, but
never in CI (.ci/run installs PgBouncer)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from clipper.db import migrate
from tests.conftest import QUEUE_SCHEMA
from tests.pgbouncer.harness import (
    Cluster,
    PgBouncer,
    cluster_and_pooler,
    pgbouncer_bin,
    postgres_bin,
)

MAX_CONNECTIONS = 40
POOL_SIZE = 20


@dataclass(frozen=True, slots=True)
class Stack:
    cluster: Cluster
    pooler: PgBouncer

    @property
    def pooled_url(self) -> str:
        """The application's role and database, through PgBouncer."""
        return self.pooler.url()

    @property
    def direct_url(self) -> str:
        """The same role and database, straight to PostgreSQL (QUEUE_LISTEN_URL)."""
        return self.cluster.url("clipper", "clipper")


def _require_binaries() -> None:
    """On a developer's machine without them, these tests skip; in CI (.ci/run sets CI, and
    installs pgbouncer) a missing binary fails them: integration tests never skip there."""
    missing = (
        "no PostgreSQL binaries under /usr/lib/postgresql"
        if postgres_bin() is None
        else "pgbouncer is not installed (apt-get install pgbouncer)"
        if pgbouncer_bin() is None
        else None
    )
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}, and CI runs every test")
        pytest.skip(missing)


def start_stack(pool_size: int = POOL_SIZE) -> Iterator[Stack]:
    _require_binaries()
    with cluster_and_pooler(
        cluster_settings={"max_connections": str(MAX_CONNECTIONS)},
        pooler_settings={"default_pool_size": str(pool_size)},
    ) as (cluster, pooler):
        stack = Stack(cluster, pooler)
        migrate.upgrade(stack.pooled_url, QUEUE_SCHEMA)  # migrations work through it too
        yield stack


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Shared by a module's tests: each starts what it needs (and every queue start makes the
    role's defaults its own again)."""
    yield from start_stack()


@pytest.fixture
def one_connection_stack() -> Iterator[Stack]:
    """PgBouncer with one server connection: every client shares it, deterministically."""
    yield from start_stack(pool_size=1)
