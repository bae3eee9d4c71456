"""Alembic owns the schema: it builds it on an empty database and takes it away again."""

from __future__ import annotations

import psycopg

from clipper.db import migrate


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, "custom_queue")
    assert "custom_queue.messages" in _tables(empty_db_url)
    migrate.upgrade(empty_db_url, "custom_queue")  # idempotent
    migrate.downgrade(empty_db_url, "custom_queue", "base")
    assert "custom_queue.messages" not in _tables(empty_db_url)
    migrate.upgrade(empty_db_url, "custom_queue")
    assert "custom_queue.messages" in _tables(empty_db_url)
