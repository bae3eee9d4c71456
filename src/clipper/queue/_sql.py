"""Loads sql/queries.sql into a name -> query map, with the schema filled in once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from psycopg import sql

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(schema: str) -> dict[str, bytes]:
    """Every named query of the engine, as bytes ready to execute (and auto-prepare)."""
    text = resources.files(__package__).joinpath("sql/queries.sql").read_text()
    parts = _HEADER.split(text)[1:]
    queries: dict[str, bytes] = {}
    for name, body in zip(parts[::2], parts[1::2], strict=True):
        template = sql.SQL(body.strip())
        queries[name] = template.format(schema=sql.Identifier(schema)).as_string(None).encode()
    return queries


_VERSION = re.compile(r"^-- version: (\d+)\s*$", re.MULTILINE)


@cache
def load_schema_versions(schema: str) -> tuple[tuple[int, bytes], ...]:
    """The numbered versions of sql/schema.sql, in order, ready to execute."""
    text = resources.files(__package__).joinpath("sql/schema.sql").read_text()
    parts = _VERSION.split(text)[1:]
    versions = []
    for number, body in zip(parts[::2], parts[1::2], strict=True):
        template = sql.SQL(body.strip())
        versions.append(
            (int(number), template.format(schema=sql.Identifier(schema)).as_string(None).encode())
        )
    return tuple(versions)


_CREATE_TABLE = re.compile(
    r"^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?\{schema\}\.(\w+)", re.MULTILINE
)


def created_tables() -> tuple[str, ...]:
    """The tables the versions of sql/schema.sql create, in order (for uninstall)."""
    text = resources.files(__package__).joinpath("sql/schema.sql").read_text()
    return tuple(_CREATE_TABLE.findall(text))


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a schema's queues; the payload names the queue."""
    return f"{schema}_wakeup"


def cancel_channel(schema: str) -> str:
    """The channel that asks consumers to stop an attempt; the payload is its message id."""
    return f"{schema}_cancel"
