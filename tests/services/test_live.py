"""The live changes hub on its own: fan-out by job id, and its rule behind a transaction
pooler (LISTEN on the listen URL when given, else poll-only), on real PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg

from clipper.db.repositories import JOB_CHANGES_CHANNEL
from clipper.queue import QueueConfig
from clipper.services.live import JobChanges
from tests.helpers import wait_event


async def _notify(db_url: str, payload: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (JOB_CHANGES_CHANNEL, payload))


async def test_a_notification_wakes_its_jobs_streams_and_the_overviews(db_url: str) -> None:
    hub = JobChanges(db_url, QueueConfig(queue="clips"))
    hub.start()
    try:
        await wait_event(hub.connected, what="the LISTEN")
        job, other = uuid.uuid4(), uuid.uuid4()
        watching, elsewhere, overview = (
            hub.subscribe(job),
            hub.subscribe(other),
            hub.subscribe(None),
        )
        for subscription in (watching, elsewhere, overview):
            await subscription.changed(0)  # forget the wake-up of the (re)connect
        await _notify(db_url, str(job))
        assert await watching.changed(10)
        assert await overview.changed(10)
        # Dispatched together with the two above: had it woken, it would be set by now.
        assert not await elsewhere.changed(0)
        await _notify(db_url, "not a job id")  # ignored, the hub keeps listening
        await _notify(db_url, str(other))
        assert await elsewhere.changed(10)
        watching.close()
        elsewhere.close()
        overview.close()
    finally:
        await hub.stop()


async def test_behind_a_transaction_pooler_without_a_listen_url_it_polls(db_url: str) -> None:
    config = QueueConfig(queue="clips", pooler="transaction", poll_interval_seconds=0.1)
    hub = JobChanges(db_url, config)
    hub.start()
    try:
        assert hub.poll_only
        subscription = hub.subscribe(uuid.uuid4())
        assert await subscription.changed(10)  # the poll, with no notification at all
        assert hub.backend_pid() is None  # nothing LISTENs through the pooler
    finally:
        await hub.stop()


async def test_behind_a_transaction_pooler_it_listens_on_the_listen_url(db_url: str) -> None:
    config = QueueConfig(queue="clips", pooler="transaction", listen_url=db_url)
    # The database URL leads nowhere: only the listen URL is used for the LISTEN.
    hub = JobChanges("postgresql://nobody@127.0.0.1:1/none", config)
    hub.start()
    try:
        assert not hub.poll_only
        await wait_event(hub.connected, what="the LISTEN on the listen URL")
        job = uuid.uuid4()
        subscription = hub.subscribe(job)
        await subscription.changed(0)
        await _notify(db_url, str(job))
        assert await subscription.changed(10)
    finally:
        await hub.stop()
