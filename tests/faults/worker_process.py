"""The real Clipper worker, with the real clip processors, for the fault tests:

    python -m tests.faults.worker_process

Configured by the environment like `clipper worker` (METRICS_PORT included). With
FAULT_STOP_AFTER_STORE set, the process sends itself SIGSTOP right after the processor of the
first job it handles has returned: the clip is stored, the job is not completed yet. That
freezes a worker at the moment its result is stored, for the stale-completion test."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from clipper.db.models import Job
from clipper.db.session import create_engine, session_factory
from clipper.db.urls import libpq_url
from clipper.logs import configure_logging
from clipper.queue import JobContext
from clipper.services.processing import ClipResult, Processor, Progress
from clipper.services.reading import SourceReading
from clipper.settings import load_settings
from clipper.storage import storage_for
from clipper.worker.processors import default_processors
from clipper.worker.service import WorkerOptions, run_worker

logger = logging.getLogger("clipper.faults")


class StopAfterFirstStore:
    """Wraps processors; the first one to return stops the process (once, for any kind)."""

    def __init__(self) -> None:
        self.armed = True

    def wrap(self, processor: Processor) -> Processor:
        async def run(job: Job, progress: Progress, context: JobContext) -> ClipResult:
            result = await processor(job, progress, context)
            if self.armed:
                self.armed = False
                logger.warning("FAULT_STOP_AFTER_STORE: clip stored; stopping this process")
                os.kill(os.getpid(), signal.SIGSTOP)  # the test sends SIGCONT
            return result

        return run


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    assert settings.database_url is not None, "DATABASE_URL must be set"
    url = libpq_url(settings.database_url.get_secret_value())
    # The processors' own sessions (a batch's shared fetch); the worker makes its own too.
    engine = create_engine(url, timeouts=settings.connection_timeouts())
    storage = storage_for(settings)
    reading = SourceReading(storage, by_range=settings.source_range_reads)
    processors = default_processors(settings, session_factory(engine), storage, reading)
    if os.environ.get("FAULT_STOP_AFTER_STORE"):
        stopper = StopAfterFirstStore()
        processors = {kind: stopper.wrap(p) for kind, p in processors.items()}
    options = WorkerOptions(metrics_port=settings.metrics_port, processors=processors)
    asyncio.run(run_worker(settings, url, options))


if __name__ == "__main__":
    main()
