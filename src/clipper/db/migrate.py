"""Apply Alembic migrations programmatically (used by `clipper db` and on start-up)."""

from __future__ import annotations

from importlib import resources

import psycopg
from alembic import command
from alembic.config import Config

from ..queue import install_sync
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
    from alembic import context, op

    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection), "migrations run on psycopg"
    install_sync(driver, schema=str(context.config.attributes.get("queue_schema", "clipper_queue")))
