"""/api/admin (admin keys): the queue's overview (and its live stream), the workers online,
pausing and resuming a queue. For the console's "run the queue" pages; docs/api.md."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Self

from fastapi import APIRouter, Depends
from pydantic import ConfigDict
from sse_starlette import EventSourceResponse, ServerSentEvent

from ...errors import NotFoundError
from ...services.admin import (
    OVERVIEW_MIN_GAP_SECONDS,
    overview,
    set_paused,
    workers,
)
from ..deps import ResourcesDep, get_admin
from ..openapi import error_responses
from ..resources import Resources
from ..schemas import Wire
from ..sse import event_stream, stream_response
from .dlq import ADMIN

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(get_admin)])

# The overview stream: at most one event per OVERVIEW_MIN_GAP_SECONDS however busy the
# jobs are (a page needs no more), and one at least this often when nothing is heard (queue
# depths and ages move without any job event: a claim, a retry coming due).
OVERVIEW_EVERY_SECONDS = 5.0


class _FromRecord(Wire):
    """Read from the services' records (frozen dataclasses) by their attribute names."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)


class PriorityRead(_FromRecord):
    priority: int
    ready: int
    scheduled: int
    active: int


class QueueRead(_FromRecord):
    queue: str
    paused: bool
    ready: int
    scheduled: int
    active: int
    failed: int
    dead_lettered: int
    oldest_waiting_seconds: float
    priorities: list[PriorityRead]


class MinuteRead(_FromRecord):
    minute: datetime
    queue: str
    completed: int
    failed: int
    retried: int
    dead_lettered: int
    cancelled: int
    picked_up: int
    pickup_avg_ms: float
    pickup_max_ms: float


class OverviewRead(_FromRecord):
    queues: list[QueueRead]
    # The last 60 minutes from the queue's stats table, oldest first; a minute without
    # any work has no entry.
    minutes: list[MinuteRead]


class WorkerRead(_FromRecord):
    id: uuid.UUID
    host: str
    pid: int
    version: str
    queues: list[str]
    concurrency: int
    # The job ids it runs (written within a second of an attempt starting or ending).
    running: list[uuid.UUID]
    started_at: datetime
    heartbeat_at: datetime


class QueueState(Wire):
    queue: str
    paused: bool


async def _overview(resources: Resources) -> OverviewRead:
    async with resources.sessions() as session:
        return OverviewRead.of(await overview(session, resources.queue))


@router.get("/overview", response_model=OverviewRead, responses=error_responses(*ADMIN))
async def read_overview(resources: ResourcesDep) -> OverviewRead:
    """Per queue: paused or not, ready, scheduled and active messages (also per priority),
    failed and dead-lettered counts, the oldest waiting message's age; and per queue and
    minute over the last hour, from the queue's stats table: completed, failed, retried,
    dead-lettered, cancelled and picked-up messages with the average and largest pickup
    wait."""
    return await _overview(resources)


@router.get(
    "/overview/stream",
    response_class=EventSourceResponse,
    responses={
        **stream_response(
            "`event: overview` with the JSON of GET /api/admin/overview: at once, then when "
            "jobs change (at most one a second) and at least every 5 s; `: keepalive` "
            "comments every 15 s."
        ),
        **error_responses(*ADMIN),
    },
)
async def overview_stream(resources: ResourcesDep) -> EventSourceResponse:
    """The overview, pushed (Server-Sent Events) as it changes: see docs/api.md."""
    first = await _overview(resources)  # a database error is still a 503, not a stream
    return event_stream(_overview_events(resources, first))


async def _overview_events(
    resources: Resources, first: OverviewRead
) -> AsyncIterator[ServerSentEvent]:
    # Subscribed when the stream runs (a response never sent leaves nothing behind); a change
    # between the first read and this shows with the next event, at most 5 s later.
    subscription = resources.changes.subscribe(None)
    loop = asyncio.get_running_loop()
    current = first
    try:
        while True:
            yield ServerSentEvent(current.model_dump_json(by_alias=True), event="overview")
            sent = loop.time()
            await subscription.changed(OVERVIEW_EVERY_SECONDS)
            await asyncio.sleep(max(0.0, sent + OVERVIEW_MIN_GAP_SECONDS - loop.time()))
            # Shared by the process's streams: read once however many admin tabs are open.
            current = OverviewRead.of(await resources.overview.get(resources.sessions))
    finally:
        subscription.close()


@router.get("/workers", response_model=list[WorkerRead], responses=error_responses(*ADMIN))
async def read_workers(resources: ResourcesDep) -> list[WorkerRead]:
    """The worker processes online (their heartbeat is fresh; a stopped or killed one drops
    off), with their queues, concurrency and the jobs each runs, oldest first."""
    return [WorkerRead.of(worker) for worker in await workers(resources.queue)]


async def _set_paused(resources: Resources, queue: str, paused: bool) -> QueueState:
    await set_paused(resources.queue, queue, paused)
    resources.changes.wake(None)  # this process's overview streams show it at once
    return QueueState(queue=queue, paused=paused)


@router.post(
    "/queues/{queue}/pause",
    response_model=QueueState,
    responses=error_responses(*ADMIN, NotFoundError),
)
async def pause(queue: str, resources: ResourcesDep) -> QueueState:
    """Stop claims from the queue on every worker (running jobs finish); 404 for a name
    that is not one of Clipper's queues."""
    return await _set_paused(resources, queue, True)


@router.post(
    "/queues/{queue}/resume",
    response_model=QueueState,
    responses=error_responses(*ADMIN, NotFoundError),
)
async def resume(queue: str, resources: ResourcesDep) -> QueueState:
    """Claim from the queue again; its workers are woken at once."""
    return await _set_paused(resources, queue, False)
