"""Live changes of jobs for the API's Server-Sent Events, from PostgreSQL LISTEN/NOTIFY.

Every event of a job NOTIFYs JOB_CHANGES_CHANNEL with the job's id in its own transaction
(db/repositories.py, JobRepository.add_event). One API process holds ONE listening
connection (`JobChanges`, started in the app's lifespan) and wakes the streams that watch
that job, and every overview stream. A notification is only a hint: a woken stream reads
the job again and sends what it finds, so a notification lost while the connection was
down costs nothing but time, and (re)connecting wakes every stream, as the queue's own
listener does for its consumers (queue/_listener.py).

Behind a transaction-pooling PgBouncer a LISTEN would sit on whichever server connection
ran it and hear nothing: then the hub listens on QUEUE_LISTEN_URL (PostgreSQL itself) when
it is set, and otherwise wakes every stream each QUEUE_POLL_INTERVAL_SEC (poll-only), the
queue's own rule (QueueConfig.poll_only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JOB_CHANGES_CHANNEL, JobRepository
from ..domain.jobs import JobStatus
from ..queue import QueueConfig, bounded, connection_kwargs

logger = logging.getLogger("clipper.live")


class Subscription:
    """What one stream waits on: set when its job (or, for an overview, any job) changed."""

    def __init__(self, hub: JobChanges, job_id: uuid.UUID | None) -> None:
        self.job_id = job_id
        self._hub = hub
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def changed(self, timeout: float | None = None) -> bool:
        """Wait for a change (True), or for `timeout` seconds (False); then wait afresh."""
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True

    def close(self) -> None:
        self._hub.unsubscribe(self)


class JobChanges:
    """The API process's one LISTEN connection, fanned out to its streams' subscriptions."""

    def __init__(self, database_url: str, config: QueueConfig) -> None:
        self._poll_only = config.poll_only
        self._poll_interval = config.poll_interval_seconds
        self._reconnect_max = config.reconnect_max_seconds
        self._deadline = config.deadlines.statement_seconds
        self._conninfo = config.listen_url or database_url
        # As the queue's listener: a direct listen URL gets no startup options (a
        # session-mode pooler accepts it as well as PostgreSQL), the database URL the
        # engine's own deadlines.
        kwargs = (
            connection_kwargs(config.deadlines, config.pooler)
            if config.listen_url is None
            else config.deadlines.libpq_kwargs()
        )
        self._connection_kwargs: dict[str, Any] = {**kwargs, "autocommit": True}
        self._by_job: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._every: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[psycopg.AsyncConnection[Any]] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        # Set while listening (tests wait for it after killing the connection).
        self.connected = asyncio.Event()

    @property
    def poll_only(self) -> bool:
        return self._poll_only

    def start(self) -> None:
        run = self._poll_forever() if self._poll_only else self._listen_forever()
        self._task = asyncio.create_task(run, name="job-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._connecting is not None:
            # A connect cut short would leave its half-made connection to the garbage
            # collector, unclosed: let it finish (libpq's connect_timeout bounds it), close it.
            with contextlib.suppress(Exception):
                await (await self._connecting).close()
            self._connecting = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        self.connected.clear()

    def backend_pid(self) -> int | None:
        """The server process of the listening connection (tests kill it on purpose)."""
        connection = self._connection
        return None if connection is None or connection.closed else connection.info.backend_pid

    def subscribe(self, job_id: uuid.UUID | None) -> Subscription:
        """Changes of `job_id`, or with None of every job."""
        subscription = Subscription(self, job_id)
        if job_id is None:
            self._every.add(subscription)
        else:
            self._by_job[job_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription.job_id is None:
            self._every.discard(subscription)
            return
        watchers = self._by_job.get(subscription.job_id)
        if watchers is not None:
            watchers.discard(subscription)
            if not watchers:
                del self._by_job[subscription.job_id]

    def wake(self, job_id: uuid.UUID | None) -> None:
        """Wake the streams of `job_id` and every overview (with None: only the overviews,
        e.g. after a queue was paused, which is no job's change)."""
        if job_id is not None:
            for subscription in self._by_job.get(job_id, ()):
                subscription.wake()
        for subscription in self._every:
            subscription.wake()

    def wake_all(self) -> None:
        for watchers in self._by_job.values():
            for subscription in watchers:
                subscription.wake()
        for subscription in self._every:
            subscription.wake()

    async def _poll_forever(self) -> None:
        logger.info(
            "poll-only: no LISTEN through the transaction pooler (no QUEUE_LISTEN_URL); live "
            "streams look for changes every %gs",
            self._poll_interval,
        )
        while True:
            await asyncio.sleep(self._poll_interval)
            self.wake_all()

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except Exception as exc:
                # Counted from the last time it listened: a drop after hours waits little.
                failures = 0 if self.connected.is_set() else failures
                self.connected.clear()
                logger.warning("job changes: listening failed: %s: %s", type(exc).__name__, exc)
            failures += 1
            await asyncio.sleep(min(self._reconnect_max, 0.05 * 2 ** min(failures, 10)))

    async def _listen(self) -> None:
        self._connecting = asyncio.ensure_future(
            psycopg.AsyncConnection.connect(
                self._conninfo, application_name="clipper-live", **self._connection_kwargs
            )
        )
        # Shielded: a stop during the connect leaves it to stop() to finish and close.
        self._connection = conn = await asyncio.shield(self._connecting)
        self._connecting = None
        async with conn:
            listen = sql.SQL("LISTEN {}").format(sql.Identifier(JOB_CHANGES_CHANNEL))
            await bounded(conn.execute(listen), self._deadline)
            self.connected.set()
            self.wake_all()  # anything that changed while no one listened
            while True:
                async for notify in conn.notifies(timeout=self._poll_interval):
                    with contextlib.suppress(ValueError):  # not a job id: nobody's
                        self.wake(uuid.UUID(notify.payload))
                # Quiet for a while: prove the socket is alive (a half-open one never errors,
                # so the check has a deadline of its own).
                await bounded(conn.execute("SELECT 1"), self._deadline)


async def watch_job(
    sessions: async_sessionmaker[AsyncSession],
    subscription: Subscription,
    job_id: uuid.UUID,
    last_event_id: int | None,
) -> AsyncIterator[tuple[int, Job]]:
    """The job, each time it changes: with the sequence number of its latest event (the
    SSE id), from after `last_event_id` (None: at once). Ends after a terminal status, or
    when the job is gone (deleted by retention). `subscription` (to this job) is made
    before the first read here, so no change after that read is missed."""
    last = last_event_id
    while True:
        async with sessions() as session:
            jobs = JobRepository(session)
            # The sequence first: the job read after it is at least as new, so a change
            # committed between the two reads is sent again on its own notification,
            # never skipped as already sent.
            sequence = await jobs.last_event_id(job_id)
            job = await jobs.get(job_id)
        if job is None:
            return
        if last is None or sequence > last:
            yield sequence, job
            last = sequence
        if JobStatus(job.status).terminal:
            return
        await subscription.changed()
