"""Alembic environment: one migration history for all of Clipper's tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from clipper.db.models import Base

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by clipper.db.migrate.alembic_config"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # The models cover the public schema; the queue's table (its own schema) is left out of
        # autogenerate's comparison because include_schemas stays off.
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `clipper db upgrade`")
run_migrations_online()
