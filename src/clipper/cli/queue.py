"""`clipper queue`: look at the queue, publish test messages, run retention now."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..domain.jobs import Priority
from ..queue import QueueMessage
from ._runtime import queue_adapter, run, settings_or_exit

app = typer.Typer(help="Inspect and operate the queue.", no_args_is_help=True)


@app.command()
def stats() -> None:
    """Unfinished messages per queue: ready, scheduled (backing off), active, oldest wait."""
    settings = settings_or_exit()

    async def main() -> None:
        async with queue_adapter(settings) as adapter:
            depth = await adapter.depth()
            health = await adapter.health()
        table = Table("queue", "ready", "scheduled", "active", "oldest ready (s)")
        for row in depth:
            table.add_row(
                row.queue,
                str(row.ready),
                str(row.scheduled),
                str(row.active),
                f"{row.oldest_ready_age_seconds:.1f}",
            )
        Console().print(table)
        Console().print(f"database ok: {health.database}")

    run(main())


@app.command()
def publish(
    count: Annotated[int, typer.Option(min=1, help="How many messages (each a new job id).")] = 1,
    priority: Annotated[Priority, typer.Option(help="fast, normal or bulk.")] = Priority.NORMAL,
    job_id: Annotated[
        uuid.UUID | None, typer.Option(help="Publish this job id (count must be 1).")
    ] = None,
) -> None:
    """Publish test messages to QUEUE_NAME; a job id already queued is skipped."""
    if job_id is not None and count != 1:
        raise typer.BadParameter("--job-id publishes exactly one message")
    settings = settings_or_exit()

    async def main() -> int:
        published = 0
        async with queue_adapter(settings) as adapter:
            with Progress(transient=True) as progress:
                task = progress.add_task("publishing", total=count)
                for _ in range(count):
                    message = QueueMessage(job_id or uuid.uuid4(), priority.rank, {"source": "cli"})
                    published += await adapter.publish(message)
                    progress.advance(task)
        return published

    typer.echo(f"published {run(main())} of {count} message(s)")


@app.command()
def retention() -> None:
    """Delete finished messages older than RETENTION_HOURS now (the worker also does this on
    a schedule). Unfinished messages are never deleted."""
    settings = settings_or_exit()

    async def main() -> tuple[int, bool]:
        async with queue_adapter(settings) as adapter:
            with Progress(transient=True) as progress:
                task = progress.add_task("deleting finished messages", total=None)
                result = await adapter.run_retention(lambda n: progress.advance(task, n))
        return result.deleted, result.skipped

    deleted, skipped = run(main())
    if skipped:
        typer.echo("another instance is running retention right now; nothing done")
    else:
        typer.echo(f"deleted {deleted} finished message(s)")
