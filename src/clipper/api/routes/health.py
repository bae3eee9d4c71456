"""/healthz (alive), /readyz (database and queue), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...domain.jobs import JobStatus
from ...errors import ForbiddenError
from ...services.health import job_stats, ping_database
from ..deps import ResourcesDep
from ..openapi import KEYED, error_responses
from ..schemas import Wire

router = APIRouter(tags=["operations"])


class Readiness(Wire):
    status: Literal["ready", "unavailable"]
    # Each check's "ok", or why it failed.
    checks: dict[str, str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it does not look at the database)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "Every check is ok."},
        503: {"model": Readiness, "description": "A check failed: `checks` says which."},
    },
)
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus' text format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        },
        # An admin key, with API keys on (see app.py, metrics_need_an_admin).
        **error_responses(*KEYED, ForbiddenError),
    },
)
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
