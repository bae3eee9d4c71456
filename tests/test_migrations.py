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


def test_migrations_produce_exactly_the_models(db_url: str) -> None:
    migrate.check(db_url, "clipper_queue")  # raises when autogenerate finds a difference


def test_the_jobs_tables_come_and_go_with_the_history(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, "clipper_queue")
    assert {"public.jobs", "public.job_events", "public.dlq_jobs"} <= _tables(empty_db_url)
    migrate.downgrade(empty_db_url, "clipper_queue", "0001_queue_messages")
    assert "public.jobs" not in _tables(empty_db_url)
    assert "clipper_queue.messages" in _tables(empty_db_url)
