"""`clipper dlq`: the dead-letter queue — consume (log and alert), list, requeue."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..worker.service import WorkerOptions, run_worker
from ._runtime import database_url_or_exit, queue_adapter, run, settings_or_exit

app = typer.Typer(
    help="The dead-letter queue (QUEUE_NAME.dlq): jobs that used up their attempts.",
    invoke_without_command=True,
)


@app.callback()
def consume(ctx: typer.Context) -> None:
    """Without a sub-command: run the dead-letter consumer until Ctrl-C. It logs each dead
    letter at error level (job id, attempts, error) and raises an alert. (`clipper worker`
    runs it too, unless given --no-dlq.)"""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    options = WorkerOptions(main_consumer=False, metrics_port=0, processors={})
    run(run_worker(settings, url, options))


@app.command("list")
def list_letters(
    limit: Annotated[int, typer.Option(min=1, help="Most letters to show.")] = 50,
) -> None:
    """Show dead letters, oldest first, with their last error."""
    settings = settings_or_exit()

    async def main() -> None:
        async with queue_adapter(settings) as adapter:
            entries = await adapter.list_dead_letters(limit=limit)
        table = Table("job id", "attempts", "error", "failed at", "state")
        for entry in entries:
            letter = entry.letter
            table.add_row(
                str(letter.job_id),
                str(letter.attempts),
                f"{letter.error.type}: {letter.error.message}"[:80],
                letter.failed_at.isoformat(timespec="seconds"),
                entry.state,
            )
        Console().print(table)

    run(main())


@app.command()
def requeue(
    job_ids: Annotated[list[uuid.UUID] | None, typer.Argument(help="Job ids to requeue.")] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Requeue every dead letter.")] = False,
) -> None:
    """Put dead letters back on the queue with fresh attempts (a redrive).

    Examples: `clipper dlq requeue 3f0c...` or `clipper dlq requeue --all`.
    """
    if not job_ids and not all_letters:
        raise typer.BadParameter("name job ids, or pass --all")
    settings = settings_or_exit()

    async def main() -> int:
        total = 0
        async with queue_adapter(settings) as adapter:
            with Progress(transient=True) as progress:
                task = progress.add_task("requeueing", total=None)
                while True:
                    batch = await adapter.redrive(job_ids or None, limit=500)
                    total += len(batch)
                    progress.update(task, advance=len(batch))
                    if len(batch) < 500:
                        return total

    typer.echo(f"requeued {run(main())} job(s)")
