"""`clipper db`: the schema, owned by Alembic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._runtime import database_reachable_or_exit, database_url_or_exit, settings_or_exit

if TYPE_CHECKING:
    from ..settings import Settings

app = typer.Typer(
    help="Manage the database schema (Alembic migrations of the queue and, later, the jobs).",
    no_args_is_help=True,
)


@app.command()
def upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision; 'head' is the newest.")
    ] = "head",
) -> None:
    """Apply migrations up to REVISION. Safe to run again: applied ones are skipped."""
    from ..db import migrate

    settings, url = _database()
    migrate.upgrade(url, settings.queue_schema, revision)
    typer.echo(f"database upgraded to {revision}")


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Revision to go back to, or 'base'.")],
) -> None:
    """Revert migrations down to REVISION (drops what later ones created, data included)."""
    from ..db import migrate

    settings, url = _database()
    migrate.downgrade(url, settings.queue_schema, revision)
    typer.echo(f"database downgraded to {revision}")


@app.command()
def current() -> None:
    """Show the revision the database is at."""
    from ..db import migrate

    settings, url = _database()
    migrate.current(url, settings.queue_schema)


def _database() -> tuple[Settings, str]:
    """The settings and the database's URL, once it answers: an unreachable database is one
    line naming DATABASE_URL, not Alembic's traceback."""
    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    database_reachable_or_exit(url, settings)
    return settings, url
