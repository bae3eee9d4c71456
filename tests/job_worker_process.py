"""A Clipper worker process with a test processor, for the SIGKILL test.

    python -m tests.job_worker_process

Attempt 1 reports progress, then hangs until killed; later attempts finish the clip."""

from __future__ import annotations

import asyncio

from clipper.db.models import Job
from clipper.logs import configure_logging
from clipper.queue import JobContext
from clipper.services.processing import ClipResult, Progress
from clipper.settings import load_settings
from clipper.worker.service import WorkerOptions, run_worker


async def hang_first_time(job: Job, progress: Progress, context: JobContext) -> ClipResult:
    await progress(10, "cut")
    if context.attempt == 1:
        await asyncio.Event().wait()  # stuck mid-cut: the test SIGKILLs this process
    await progress(100, "store")
    return ClipResult(f"results/{job.id}/clip.mp4")


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    options = WorkerOptions(metrics_port=0, processors={"upload": hang_first_time})
    asyncio.run(run_worker(settings, settings.database_url.get_secret_value(), options))  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
