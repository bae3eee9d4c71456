"""/healthz (alive), /readyz (database and queue), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...domain.jobs import JobStatus
from ...services.health import job_stats, ping_database
from ..deps import ResourcesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it does not look at the database)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """Ready to serve: the database answers and the queue is healthy; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0), resources.sessions() as session:
            await ping_database(session)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    queue = await resources.queue.health()
    checks["queue"] = "ok" if queue.ok else "; ".join(queue.detail.values()) or "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(resources: ResourcesDep, response: Response) -> Response:
    """Queue, HTTP and job metrics; job counts are read from the database now."""
    state = resources.metrics
    async with resources.sessions() as session:
        stats = await job_stats(session)
    for status in JobStatus:
        state.gauges.jobs.labels(status.value).set(stats.by_status.get(status.value, 0))
    state.gauges.dead.set(stats.dead_letters)
    state.gauges.oldest.set(stats.oldest_queued_age_seconds)
    # The queue's depth collector reads synchronously: keep it off the event loop.
    body = await asyncio.to_thread(
        lambda: generate_latest(state.registry) + generate_latest(resources.queue.metrics.registry)
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
