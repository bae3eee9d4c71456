"""`clipper worker`: consume the clips queue until SIGINT/SIGTERM."""

from __future__ import annotations

from typing import Annotated

import typer

from ._runtime import database_reachable_or_exit, database_url_or_exit, run, settings_or_exit


def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs run at once (default QUEUE_CONCURRENCY).")
    ] = None,
    migrate_first: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="Apply database migrations before starting (default AUTO_MIGRATE).",
        ),
    ] = None,
    dlq: Annotated[
        bool,
        typer.Option("--dlq/--no-dlq", help="Also run the dead-letter consumer (logs, alerts)."),
    ] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics on 127.0.0.1:PORT (default METRICS_PORT; 0: off)."
        ),
    ] = None,
) -> None:
    """Run a worker: claim jobs from QUEUE_NAME and run them, with retries, dead-lettering,
    lease heartbeats and retention. Ctrl-C (SIGINT) or SIGTERM stops it gracefully: no new
    claims, running jobs get QUEUE_SHUTDOWN_GRACE_SEC to finish; a second Ctrl-C stops at once.
    Unfinished jobs go back to the queue without using up an attempt.

    Without DATABASE_URL it uses an embedded PostgreSQL under .clipper/pgdata.
    """
    from ..db import migrate
    from ..worker.service import WorkerOptions, run_worker

    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    database_reachable_or_exit(url, settings)
    if settings.auto_migrate if migrate_first is None else migrate_first:
        migrate.upgrade(url, settings.queue_schema)
    port = settings.metrics_port if metrics_port is None else metrics_port
    options = WorkerOptions(concurrency=concurrency, dead_letter_consumer=dlq, metrics_port=port)
    run(run_worker(settings, url, options))
