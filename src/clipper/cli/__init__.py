"""The `clipper` command line.

`clipper --help` (and each group's) builds every command from its signature, so the command
modules import only typer, rich, the standard library and the domain at the top; a command
imports the database drivers, the web framework, the queue and the media libraries in its
body, when it runs. Help then starts in a fraction of the time (tests/test_cli_imports.py)."""

from __future__ import annotations

from . import _early_exit  # noqa: F401  (imported first: SIGTERM handling during start-up)

import typer

from . import db, dlq, jobs, keys, queue
from .clip import clip, sample_video
from .jobs import cleanup, seed
from .serve import api, up
from .worker import worker

app = typer.Typer(
    help=(
        "Clipper: clip jobs on a PostgreSQL queue.\n\n"
        "Start with `clipper up`: the API, the worker and the dead-letter consumer in one "
        "process (an embedded PostgreSQL when DATABASE_URL is unset). "
        "Settings come from environment variables (see docs/queue.md), e.g. "
        "QUEUE_CONCURRENCY=8 clipper worker."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
app.command()(up)
app.command()(clip)
app.command("sample-video")(sample_video)
app.command()(api)
app.command()(worker)
app.command()(cleanup)
app.command()(seed)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(dlq.app, name="dlq")
app.add_typer(queue.app, name="queue")
app.add_typer(jobs.app, name="jobs")


def main() -> None:
    app()
