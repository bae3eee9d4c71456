"""create_app(settings): the FastAPI application, its resources opened in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi_offline import FastAPIOffline

from ..db.session import create_engine, session_factory
from ..queue import QueueAdapter
from ..services.admin import SharedOverview
from ..services.live import JobChanges
from ..services.reading import SourceReading
from ..settings import Settings
from ..signing import Signer, key_or_process_key
from ..storage import storage_for
from .auth import ApiKeys
from .deps import get_admin, get_caller, get_resources
from .errors import install_error_handlers
from .metrics import ApiMetrics
from .middleware import BodyLimit, RequestContextMiddleware
from .openapi import install_openapi
from .resources import Resources
from .routes import (
    admin,
    batches,
    console,
    direct_uploads,
    dlq,
    files,
    health,
    jobs,
    resumable_uploads,
    uploads,
)
from .tus import TusHeadersMiddleware

DESCRIPTION = """Clip jobs on demand. `POST /api/jobs` stores and enqueues a job in one
transaction and answers 202 at once; poll `GET /api/jobs/{id}` or read its events.
Errors always come as `{"error": {"code", "message", "details"?, "correlationId"}}`."""


def signing_key(settings: Settings) -> bytes:
    """SIGNING_KEY, or a key of this process only (links then work only on this process)."""
    return key_or_process_key(settings.signing_key, "result links")


async def metrics_need_an_admin(request: Request) -> None:
    """With API keys on, /metrics needs an admin key (401 without a key, 403 with another):
    job counts and queue depths are the operator's. With keys off every caller is the local
    admin, so it stays open (the API listens on 127.0.0.1 unless told otherwise). The
    other operations routes, the health probes, stay open to probes that hold no key."""
    if request.scope.get("endpoint") is health.metrics:
        await get_admin(await get_caller(request, get_resources(request)))


def create_app(settings: Settings, database_url: str, queue: QueueAdapter | None = None) -> FastAPI:
    """The API. Give it the process's queue adapter to share one (as `clipper up` does);
    otherwise it opens its own for its lifetime."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            database_url, timeouts=settings.connection_timeouts(), pooler=settings.pooler
        )
        sessions = session_factory(engine)
        own_queue = queue is None
        adapter = queue or QueueAdapter(database_url, settings.queue_config())
        if own_queue:
            await adapter.start()
        storage = storage_for(settings)
        # The uploads' probe reads an object in the store by range, not downloaded whole.
        reading = SourceReading(storage, by_range=settings.source_range_reads)
        # The live streams' one LISTEN connection (or poll-only behind a transaction pooler
        # without QUEUE_LISTEN_URL: the queue's own rule).
        changes = JobChanges(database_url, adapter.config)
        changes.start()
        app.state.resources = Resources(
            settings=settings,
            sessions=sessions,
            queue=adapter,
            keys=ApiKeys(settings.enable_api_keys, sessions),
            metrics=metrics,
            storage=storage,
            reading=reading,
            overview=SharedOverview(adapter),
            signer=Signer(signing_key(settings)),
            changes=changes,
        )
        try:
            yield
        finally:
            await changes.stop()
            await reading.aclose()
            if own_queue:
                await adapter.shutdown()
            await engine.dispose()

    # /docs (Swagger UI) and /redoc from assets bundled in the fastapi-offline package, served
    # by this process: FastAPI's own pages load them from a CDN, out of reach offline.
    app = FastAPIOffline(
        title="Clipper", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    install_openapi(app)
    max_body = BodyLimit(
        settings.max_request_bytes, f"{settings.max_request_bytes} bytes (MAX_REQUEST_BYTES)"
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body=max_body,
        # Uploads (in one request, or a resumable upload's parts) are the one kind of request
        # with large bodies; they stream to disk. (Room for the multipart framing: the file
        # itself is held to MAX_INPUT_MB by the routes.)
        max_body_under={
            "/api/uploads": BodyLimit(
                settings.max_input_bytes + 2**20,
                f"{settings.max_input_mb:g} MB (MAX_INPUT_MB)",
            ),
            # ...but not a direct upload's request: JSON that names the file, which goes to
            # the object store itself.
            "/api/uploads/presigned": max_body,
        },
        metrics=metrics.http,
    )
    # Outermost, so that every answer under /api/uploads/resumable has Tus-Resumable, the
    # 413s above included.
    app.add_middleware(TusHeadersMiddleware)
    install_error_handlers(app)
    app.include_router(admin.router)
    for module in (batches, jobs, uploads, direct_uploads, resumable_uploads, files, dlq, console):
        app.include_router(module.router)
    app.include_router(health.router, dependencies=[Depends(metrics_need_an_admin)])
    return app
