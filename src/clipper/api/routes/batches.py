"""/api/jobs/batch: several clips of one source in one request, each an ordinary job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from ...errors import ConflictError
from ...services.batches import create_batch
from ...services.jobs import IdempotencyConflictError
from ...services.quotas import check_active_jobs
from ...services.subtitling import speech_spec
from ..clip_requests import check_uploads, check_url, to_clip_requests
from ..deps import CallerDep, ResourcesDep, get_caller, json_body
from ..limits import count_request
from ..openapi import CLIPS, error_responses
from ..schemas import BatchAccepted, BatchCreate, JobAccepted

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(get_caller)])


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses=error_responses(*CLIPS),
    dependencies=[Depends(json_body)],
)
async def create(
    body: BatchCreate,
    resources: ResourcesDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BatchAccepted:
    """Accept 1 to 50 clips of one source: one job per clip, all with one `batchId`, stored
    and enqueued in one transaction (one invalid clip, and none is made). Each job is then an
    ordinary one (read, cancel, result). A URL source is fetched once for the whole batch.
    The same `Idempotency-Key` again returns the same jobs."""
    limits = await count_request(resources, caller)
    requests = to_clip_requests(body, resources.settings)
    source = requests[0]  # every clip has the batch's one source: checked once
    await check_url(source, resources.settings)
    async with resources.sessions.begin() as session:
        await check_uploads(
            session,
            requests,
            resources.storage,
            caller.scope,
            speech_spec(resources.settings),
            batch=True,
        )
        await check_active_jobs(session, caller.scope, limits, adding=len(requests))
        try:
            created = await create_batch(
                session, resources.queue, requests, caller.scope, idempotency_key
            )
        except IdempotencyConflictError as exc:
            raise ConflictError() from exc
    response.headers["Location"] = f"/api/jobs/{created.jobs[0].id}"
    if not created.created:
        response.headers["Idempotent-Replayed"] = "true"
    return BatchAccepted(
        batch_id=created.batch_id, jobs=[JobAccepted.of(job) for job in created.jobs]
    )
