"""`clipper cleanup` and `clipper seed` (job retention now, and demo data), and
`clipper jobs cancel`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from ..domain.tenancy import OPERATOR
from ..errors import ClipperError
from ._runtime import (
    command_engine,
    database_url_or_exit,
    fail,
    queue_adapter,
    run,
    settings_or_exit,
)

if TYPE_CHECKING:
    from ..settings import Settings


def cleanup(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete expired jobs (done or failed, past expiresAt) with their events, dead-letter
    records and stored files, in batches. Queued and processing jobs are never touched; a job
    whose files cannot be deleted stays for the next run. Also old uploads, and the media
    fetched for a batch once none of its jobs is queued or processing. The worker also does
    this on a schedule (MAINTENANCE_INTERVAL_SEC)."""
    from ..db.session import session_factory
    from ..services.retention import (
        cleanup_batch_media,
        cleanup_expired_jobs,
        cleanup_old_uploads,
    )
    from ..storage import storage_for

    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> str:
        engine = command_engine(settings, url, 2)
        storage = storage_for(settings)
        uploads = batches = 0
        try:
            with Progress(transient=True) as progress:
                task = progress.add_task("deleting expired jobs", total=None)
                result = await cleanup_expired_jobs(
                    session_factory(engine),
                    storage,
                    dry_run=dry_run,
                    on_batch=lambda count: progress.advance(task, count),
                )
            if not dry_run:
                uploads = await cleanup_old_uploads(
                    session_factory(engine), storage, settings.retention_hours
                )
                batches = await cleanup_batch_media(session_factory(engine), storage)
        finally:
            await engine.dispose()
        if dry_run:
            return f"{result.deleted} expired job(s) would be deleted"
        if result.skipped:
            return "another instance is running retention right now; nothing done"
        return (
            f"deleted {result.deleted} expired job(s); kept {result.kept} for the next run; "
            f"deleted {uploads} upload(s) older than RETENTION_HOURS; "
            f"deleted the fetched media of {batches} finished batch(es)"
        )

    typer.echo(run(main()))


def seed(
    count: Annotated[int, typer.Option(min=1, help="Jobs per state.")] = 2,
) -> None:
    """Add sample jobs, with their events, for demos and development: queued, done, failed
    and cancelled. A running worker completes the queued ones (they are really enqueued, as
    clips of a short sample video stored in DATA_DIR as an upload) and leaves the others
    alone (they have no queue message): seeding never makes a dead letter or an alert, and
    no job is left processing. Run it where the workers' DATA_DIR is."""
    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    typer.echo(run(_seed(settings, url, count)))


async def _seed(settings: Settings, url: str, count: int) -> str:
    from ..db.session import session_factory
    from ..queue import QueueAdapter
    from ..services.seed import SEEDED_STATES, seed_jobs, seed_upload
    from ..storage import storage_for

    engine = command_engine(settings, url, 2)
    queue = QueueAdapter(url, settings.queue_config())
    await queue.start()
    try:
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            upload_key = await seed_upload(session, storage_for(settings))
        for index in range(count):
            async with sessions.begin() as session:
                await seed_jobs(session, queue, upload_key, index, settings.keep_finished_for)
    finally:
        await queue.shutdown()
        await engine.dispose()
    states = ", ".join(SEEDED_STATES)
    return f"seeded {count * len(SEEDED_STATES)} job(s): {count} each {states}"


app = typer.Typer(help="Act on jobs as the operator (every tenant's).", no_args_is_help=True)


@app.command("cancel")
def cancel(job_id: Annotated[uuid.UUID, typer.Argument(help="The job's id.")]) -> None:
    """Cancel a queued or processing job, as POST /api/jobs/{id}/cancel does: a queued one
    never runs, a processing one has its FFmpeg (or fetch) stopped by its worker. Cancelling a
    cancelled job again is harmless; a done or failed job is refused (exit code 1)."""
    from ..db.session import session_factory
    from ..services.cancel import cancel_job

    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> str:
        engine = command_engine(settings, url, 1)
        try:
            async with queue_adapter(settings) as queue, session_factory(engine).begin() as session:
                job = await cancel_job(session, queue, job_id, OPERATOR, settings.keep_finished_for)
                return f"job {job.id} is {job.status}"
        finally:
            await engine.dispose()

    try:
        typer.echo(run(main()))
    except ClipperError as exc:
        fail(f"job {job_id}: {exc}", code=1)
