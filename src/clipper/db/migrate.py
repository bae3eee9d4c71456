"""Apply Alembic migrations programmatically (used by `clipper db` and on start-up)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config

from ..queue import install_sync, uninstall_sync
from .urls import sqlalchemy_url


def alembic_config(database_url: str, queue_schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("clipper") / "migrations"))
    # Percent signs in passwords would otherwise be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    config.attributes["queue_schema"] = queue_schema
    return config


def upgrade(database_url: str, queue_schema: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url, queue_schema), revision)


def downgrade(database_url: str, queue_schema: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url, queue_schema), revision)


def check(database_url: str, queue_schema: str) -> None:
    """Raise when the models and the migrated database differ (a migration is missing)."""
    command.check(alembic_config(database_url, queue_schema))


def current(database_url: str, queue_schema: str) -> None:
    command.current(alembic_config(database_url, queue_schema), verbose=True)


def install_queue_schema() -> None:
    """From inside a migration: bring the queue's own schema (QUEUE_SCHEMA) to its current
    version with the queue's installer, in the migration's transaction. The queue owns its
    DDL; the Alembic history only decides when it runs."""
    install_sync(_migration_connection(), schema=_migration_queue_schema())


def uninstall_queue_schema() -> None:
    """From inside a migration: drop the queue's tables (a downgrade to base)."""
    uninstall_sync(_migration_connection(), schema=_migration_queue_schema())


def _migration_connection() -> psycopg.Connection[Any]:
    from alembic import op

    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection), "migrations run on psycopg"
    return driver


def _migration_queue_schema() -> str:
    from alembic import context

    return str(context.config.attributes.get("queue_schema", "clipper_queue"))
