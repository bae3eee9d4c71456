"""`clipper queue`: look at the queue, publish test messages, run retention now."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..domain.jobs import Priority
from ._runtime import queue_adapter, run, settings_or_exit

app = typer.Typer(help="Inspect and operate the queue.", no_args_is_help=True)


@app.command()
def stats(
    minutes: Annotated[int, typer.Option(min=1, help="How far back the totals go.")] = 60,
) -> None:
    """Per queue: what waits now (ready, scheduled, active, oldest wait) and what finished in
    the last MINUTES (completed, retried, failed, dead-lettered, cancelled, from the stats
    table, so it never scans the messages), and whether the queue is paused."""
    from ..queue import QueueDepth

    settings = settings_or_exit()

    async def main() -> None:
        async with queue_adapter(settings) as adapter:
            depth = {row.queue: row for row in await adapter.depth()}
            finished = await adapter.stats(minutes=minutes)
            paused = set(await adapter.paused_queues())
            health = await adapter.health()
        totals: dict[str, list[int]] = {}
        for row in finished:
            counts = totals.setdefault(row.queue, [0] * 5)
            for index, value in enumerate(
                (row.completed, row.retried, row.failed, row.dead_lettered, row.cancelled)
            ):
                counts[index] += value
        table = Table(
            "queue", "ready", "scheduled", "active", "oldest ready (s)",
            f"done/{minutes}m", "retried", "failed", "dead", "cancelled", "paused",
        )  # fmt: skip
        for queue in sorted(depth.keys() | totals.keys() | paused):
            now = depth.get(queue) or QueueDepth(queue)
            table.add_row(
                queue,
                *(str(n) for n in (now.ready, now.scheduled, now.active)),
                f"{now.oldest_ready_age_seconds:.1f}",
                *(str(count) for count in totals.get(queue, [0] * 5)),
                "yes" if queue in paused else "",
            )
        table.columns[0].no_wrap = True  # queue names are for copying
        # Wider than a narrow terminal rather than cut: the terminal wraps, names stay whole.
        Console(width=max(Console().width, 120)).print(table)
        Console().print(f"database ok: {health.database}")

    run(main())


QueueArgument = Annotated[str | None, typer.Argument(help="The queue (default QUEUE_NAME).")]


@app.command()
def pause(queue: QueueArgument = None) -> None:
    """Stop claims from a queue on every worker at once; running jobs finish. Publishing
    goes on: messages wait until `clipper queue resume`."""
    typer.echo(f"paused {_set_paused(queue, True)}")


@app.command()
def resume(queue: QueueArgument = None) -> None:
    """Let workers claim from a paused queue again (they are woken at once)."""
    typer.echo(f"resumed {_set_paused(queue, False)}")


def _set_paused(queue: str | None, paused: bool) -> str:
    settings = settings_or_exit()

    async def main() -> None:
        async with queue_adapter(settings) as adapter:
            await (adapter.pause if paused else adapter.resume)(queue)

    run(main())
    return queue or settings.queue_name


@app.command()
def publish(
    count: Annotated[int, typer.Option(min=1, help="How many messages (each a new job id).")] = 1,
    priority: Annotated[Priority, typer.Option(help="fast, normal or bulk.")] = Priority.NORMAL,
    job_id: Annotated[
        uuid.UUID | None, typer.Option(help="Publish this job id (count must be 1).")
    ] = None,
) -> None:
    """Publish test messages to QUEUE_NAME; a job id already queued is skipped."""
    from ..queue import QueueMessage

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
