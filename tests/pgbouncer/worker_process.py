"""The real Clipper worker (queue, job runner, webhooks, dead letters, retention) with a
processor that does no media work, so that 30 of them fit on a small machine:

    python -m tests.pgbouncer.worker_process

Configured by the environment like `clipper worker`. Each job it runs prints one line,
`PROCESSED <job id> <attempt>`, so a test can tell that no job ran twice."""

from __future__ import annotations

import asyncio

from clipper.db.models import Job
from clipper.db.urls import libpq_url
from clipper.logs import configure_logging
from clipper.queue import JobContext
from clipper.services.processing import ClipResult, Progress
from clipper.settings import load_settings
from clipper.worker.service import WorkerOptions, run_worker


async def instant(job: Job, progress: Progress, context: JobContext) -> ClipResult:
    await progress(50, "cut")
    print(f"PROCESSED {job.id} {context.attempt}", flush=True)
    return ClipResult(f"results/{job.id}/clip.mp4")


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    assert settings.database_url is not None, "DATABASE_URL must be set"
    url = libpq_url(settings.database_url.get_secret_value())
    options = WorkerOptions(metrics_port=0, processors={"upload": instant})
    asyncio.run(run_worker(settings, url, options))


if __name__ == "__main__":
    main()
