"""`clipper dlq`: the dead-letter queue — consume (log and alert), list, requeue."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ._runtime import command_engine, database_url_or_exit, queue_adapter, run, settings_or_exit

if TYPE_CHECKING:
    from ..services.dead_letters import DeadLetterView
    from ..services.requeue import RequeueResult
    from ..settings import Settings

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
    from ..worker.service import WorkerOptions, run_worker

    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    options = WorkerOptions(main_consumer=False, metrics_port=0, processors={})
    run(run_worker(settings, url, options))


@app.command("list")
def list_letters(
    limit: Annotated[int, typer.Option(min=1, help="Most letters to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Failed jobs' dead-letter records, newest first: job id, error code and message,
    attempts, when it failed. (The same records as GET /api/dlq; requeue one with
    `clipper dlq requeue JOB_ID`.)"""
    from ..db.session import session_factory
    from ..services.dead_letters import dead_letter_views

    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> list[DeadLetterView]:
        engine = command_engine(settings, url, 1)
        try:
            async with session_factory(engine)() as session:
                return await dead_letter_views(session, limit)
        finally:
            await engine.dispose()

    views = run(main())
    if as_json:
        for view in views:
            typer.echo(json.dumps(view.as_json()))
        return
    table = Table("job id", "code", "error", "attempts", "failed at")
    for column in (table.columns[0], table.columns[1], table.columns[4]):
        column.no_wrap = True  # ids and codes are for copying: never cut or folded
    table.columns[2].overflow = "fold"
    for view in views:
        table.add_row(
            str(view.job_id),
            view.code,
            view.message,
            str(view.attempts),
            view.failed_at.isoformat(timespec="seconds"),
        )
    # Wider than a narrow terminal rather than cut: the terminal wraps, the ids stay whole.
    Console(width=max(Console().width, 140)).print(table)


@app.command()
def requeue(
    job_ids: Annotated[list[uuid.UUID] | None, typer.Argument(help="Job ids to requeue.")] = None,
    all_letters: Annotated[
        bool, typer.Option("--all", help="Requeue every failed job with a dead-letter record.")
    ] = False,
) -> None:
    """Run failed jobs again with fresh attempts: each job goes back to queued, its
    dead-letter record and dead letter are removed and its queue message runs again, in one
    transaction per batch. Names each job it could not requeue (unknown, or not failed) and
    then exits 1.

    Examples: `clipper dlq requeue 3f0c...` or `clipper dlq requeue --all`.
    """
    if bool(job_ids) == all_letters:
        raise typer.BadParameter("name job ids, or pass --all")
    settings = settings_or_exit()
    outcome = run(_requeue_batches(settings, database_url_or_exit(settings), job_ids or None))
    for job_id in outcome.unknown:
        typer.echo(f"{job_id}: not requeued, no such job", err=True)
    for job_id, refusal in outcome.refused.items():
        typer.echo(f"{job_id}: not requeued, {refusal}", err=True)
    typer.echo(f"requeued {len(outcome.requeued)} job(s)")
    if outcome.unknown or outcome.refused:
        raise typer.Exit(1)


async def _requeue_batches(
    settings: Settings, url: str, job_ids: list[uuid.UUID] | None
) -> RequeueResult:
    """Every batch, each committed on its own; what they did, together."""
    from ..db.session import session_factory
    from ..services.requeue import requeue_in_batches

    engine = command_engine(settings, url, 1)
    try:
        async with queue_adapter(settings) as adapter:
            with Progress(transient=True) as progress:
                task = progress.add_task("requeueing", total=len(set(job_ids)) if job_ids else None)
                return await requeue_in_batches(
                    session_factory(engine),
                    adapter,
                    job_ids,
                    on_batch=lambda batch: progress.advance(task, batch.handled),
                )
    finally:
        await engine.dispose()
