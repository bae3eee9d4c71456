"""The queue's own schema: `install()` creates or upgrades it on any PostgreSQL database,
without Alembic or any table of the application.

Idempotent and safe when many processes start at once: each run takes a transaction-level
advisory lock for its schema, reads the installed version from `{schema}.schema_version` and
applies the missing versions of sql/schema.sql in one transaction, so a failure leaves the
previous version in place.

    await install("postgresql://…/app", schema="jobs_queue")   # async, its own connection
    install_sync(connection, schema="jobs_queue")              # inside a caller's transaction
"""

from __future__ import annotations

import zlib
from typing import Any

import psycopg
from psycopg import sql

from ._sql import created_tables, load_schema_versions

SCHEMA_VERSION = max(version for version, _ in load_schema_versions("clipper_queue"))


def _bootstrap(schema: str) -> list[sql.Composed]:
    name = sql.Identifier(schema)
    return [
        sql.SQL("SELECT pg_advisory_xact_lock({key})").format(key=sql.Literal(_lock_key(schema))),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_version ("
            " version integer PRIMARY KEY,"
            " installed_at timestamptz NOT NULL DEFAULT now())"
        ).format(name),
    ]


def _current_version(schema: str) -> sql.Composed:
    return sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(
        sql.Identifier(schema)
    )


def _record(schema: str, version: int) -> sql.Composed:
    return sql.SQL("INSERT INTO {}.schema_version (version) VALUES ({})").format(
        sql.Identifier(schema), sql.Literal(version)
    )


def uninstall_sync(conn: psycopg.Connection[Any], *, schema: str = "clipper_queue") -> None:
    """Drop the queue's tables (and every message in them) from `schema`, in the caller's
    transaction; the schema itself stays. For an Alembic downgrade to base."""
    names = (*created_tables(), "schema_version")
    tables = sql.SQL(", ").join(sql.Identifier(schema, table) for table in names)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tables))


def _lock_key(schema: str) -> int:
    # One install at a time per schema; other schemas in the same database do not wait.
    return zlib.crc32(f"{schema}.install".encode())


async def install(
    target: str | psycopg.AsyncConnection[Any], *, schema: str = "clipper_queue"
) -> int:
    """Bring `schema` to SCHEMA_VERSION; returns it. `target` is a libpq URL (a connection is
    opened and closed for it) or an open psycopg AsyncConnection, whose transaction (or a
    savepoint in it) the installation joins."""
    if isinstance(target, str):
        async with await psycopg.AsyncConnection.connect(target) as conn:
            return await install(conn, schema=schema)
    async with target.transaction():
        for statement in _bootstrap(schema):
            await target.execute(statement)
        row = await (await target.execute(_current_version(schema))).fetchone()
        installed = int(row[0]) if row else 0
        for version, body in load_schema_versions(schema):
            if version > installed:
                await target.execute(body)
                await target.execute(_record(schema, version))
    return SCHEMA_VERSION


def install_sync(conn: psycopg.Connection[Any], *, schema: str = "clipper_queue") -> int:
    """`install()` on a synchronous psycopg connection, for callers that have no event loop
    (an Alembic migration runs it in its own transaction)."""
    with conn.transaction():
        for statement in _bootstrap(schema):
            conn.execute(statement)
        row = conn.execute(_current_version(schema)).fetchone()
        installed = int(row[0]) if row else 0
        for version, body in load_schema_versions(schema):
            if version > installed:
                conn.execute(body)
                conn.execute(_record(schema, version))
    return SCHEMA_VERSION
