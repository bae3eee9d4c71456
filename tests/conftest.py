"""Real PostgreSQL for every database test: DATABASE_URL's server when set, else the embedded
one. Each run migrates one template database and clones it for each test; all are dropped."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from clipper.db import migrate
from clipper.db.urls import libpq_url
from clipper.embedded_db import start_embedded_postgres

# The moto S3 server (a session process) and a bucket per test, for the object storage tests.
from tests.moto_server import moto_endpoint, s3_bucket  # noqa: F401

RUN_ID = uuid.uuid4().hex[:8]
QUEUE_SCHEMA = "clipper_queue"
_counter = itertools.count()


def database_url(server_url: str, name: str) -> str:
    return libpq_url(make_url(server_url).set(database=name).render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def server_url() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return libpq_url(configured)
    return start_embedded_postgres(Path(".clipper") / "pgdata")


def _create(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server_url, autocommit=True) as admin:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)
    return database_url(server_url, name)


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    name = f"clipper_test_{RUN_ID}_template"
    url = _create(server_url, name)
    migrate.upgrade(url, QUEUE_SCHEMA)
    yield name
    _drop(server_url, name)


@pytest.fixture
def db_url(server_url: str, template_database: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    name = f"clipper_test_{RUN_ID}_{next(_counter)}"
    url = _create(server_url, name, template=template_database)
    yield url
    _drop(server_url, name)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A database with no schema at all (for migration tests)."""
    name = f"clipper_test_{RUN_ID}_{next(_counter)}_empty"
    yield _create(server_url, name)
    _drop(server_url, name)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster of one test's own, so it can be crashed and restarted
    without touching the server the other tests use. Binaries come from the pgserver wheel."""

    def __init__(self, data_dir: Path) -> None:
        import pgserver

        self._server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
        self.data_dir = data_dir
        self.url = libpq_url(str(self._server.get_uri()))

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import time
        pg_ctl(list(args), pgdata=self.data_dir, user=self._server.system_user)

    def crash_restart(self) -> None:
        """Stop without a checkpoint (as a crash does), then start and recover."""
        self._pg_ctl("-w", "restart", "-m", "immediate")

    def stop(self) -> None:
        """Stop at once, as a crash would."""
        self._pg_ctl("-w", "stop", "-m", "immediate")

    def start(self) -> None:
        """Start again after stop(), on the same socket (so the same URL works)."""
        self._server.ensure_postgres_running()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A migrated private cluster, outside pytest's temporary folders: as root the cluster runs
    as the `pgserver` user, and any pytest session that starts meanwhile resets
    /tmp/pytest-of-root to mode 0700, after which pg_ctl could no longer reach its data."""
    root = Path(tempfile.mkdtemp(prefix="clipper-pg-"))
    try:
        cluster = PrivatePostgres(root / "pg")
        migrate.upgrade(cluster.url, QUEUE_SCHEMA)
        yield cluster
        cluster.stop()  # a test may leave it stopped: stopping twice only complains
    finally:
        shutil.rmtree(root, ignore_errors=True)
