"""The API app on a real database, driven over HTTP (httpx, in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.api import create_app
from clipper.api_keys import make_key
from clipper.db.repositories import ApiKeyRepository, UploadRepository
from clipper.db.session import create_engine, session_factory
from clipper.settings import Settings
from clipper.signals import StopSignals
from clipper.storage import LocalStorage, source_key
from clipper.worker.service import Worker, WorkerOptions
from tests.api.statuses import Observed, undeclared, watching
from tests.api.streaming import StreamingASGITransport
from tests.moto_server import S3Bucket

ApiFactory = Callable[..., Any]


def settings_for(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def observed_statuses() -> Iterator[set[Observed]]:
    """Every (method, route, status) the API tests saw. Checked when the session ends, so
    whichever tests ran and in whatever order: each status must be declared for its route in
    the OpenAPI document, or the session fails (with the undeclared ones named)."""
    observed: set[Observed] = set()
    yield observed
    document = create_app(settings_for(), "postgresql://unused").openapi()
    missing = undeclared(observed, document)
    assert not missing, f"answered but not declared in /openapi.json: {missing}"


@pytest.fixture(autouse=True)
def record_statuses(observed_statuses: set[Observed], monkeypatch: pytest.MonkeyPatch) -> None:
    """Note the route and status of every in-process response (any test's own client too)."""
    original = httpx.ASGITransport.__init__

    def init(transport: httpx.ASGITransport, app: Any, *args: Any, **kwargs: Any) -> None:
        original(transport, watching(app, observed_statuses), *args, **kwargs)

    monkeypatch.setattr(httpx.ASGITransport, "__init__", init)


# An upload that exists in every test app's storage (its content is never read by the API).
SAMPLE_UPLOAD_KEY = "up_" + "5" * 32


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    storage = LocalStorage(tmp_path / "data")
    storage.path(source_key(SAMPLE_UPLOAD_KEY)).parent.mkdir(parents=True)
    storage.path(source_key(SAMPLE_UPLOAD_KEY)).write_bytes(b"a stored upload")
    return tmp_path / "data"


@pytest.fixture
async def make_client(db_url: str, data_dir: Path) -> AsyncIterator[ApiFactory]:
    """make_client(**settings) -> an httpx client for an app with those settings
    (`streaming=True`: one that reads streamed responses as they come)."""
    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(*, streaming: bool = False, **values: Any) -> httpx.AsyncClient:
        app = create_app(settings_for(data_dir=data_dir, **values), db_url)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        # streaming: responses come as the app sends them (Server-Sent Events), see streaming.py
        transport = StreamingASGITransport(app=app) if streaming else httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://api")
        opened.append((lifespan, client))
        return client

    yield make
    for lifespan, client in opened:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def worker(db_url: str, data_dir: Path) -> AsyncIterator[Worker]:
    """A real worker in the test's process, cutting with FFmpeg into `data_dir`."""
    settings = settings_for(data_dir=data_dir, queue_retry_backoff_ms_base=50)
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    yield running
    await running.stop(StopSignals())


@pytest.fixture
async def s3_worker(db_url: str, data_dir: Path, s3_bucket: S3Bucket) -> AsyncIterator[Worker]:
    """The same worker, its storage the test's bucket (STORAGE_URL)."""
    settings = settings_for(
        data_dir=data_dir, storage_url=s3_bucket.url, queue_retry_backoff_ms_base=50
    )
    running = Worker(settings, db_url, WorkerOptions(metrics_port=0))
    await running.start()
    yield running
    await running.stop(StopSignals())


@pytest.fixture
async def client(make_client: ApiFactory) -> httpx.AsyncClient:
    made: httpx.AsyncClient = await make_client()
    return made


def clip(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceType": "upload",
        "uploadKey": SAMPLE_UPLOAD_KEY,
        "start": "00:00:05",
        "end": "00:00:35",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


async def create_key(db_url: str, *, admin: bool = False) -> str:
    """A new API key's token (as `clipper keys create` makes one)."""
    engine = create_engine(db_url, pool_size=1)
    key = make_key()
    async with session_factory(engine).begin() as session:
        await ApiKeyRepository(session).add(key.id, "test", key.secret_hash, admin)
    await engine.dispose()
    return key.token


async def own_sample_upload(db_url: str, token: str) -> None:
    """Record SAMPLE_UPLOAD_KEY as uploaded with `token`'s key (as POST /api/uploads would),
    taking it from any earlier owner."""
    await own_upload(db_url, token, SAMPLE_UPLOAD_KEY)


async def own_upload(
    db_url: str, token: str, upload_key: str, data_dir: Path | None = None
) -> None:
    """Record `upload_key` as `token`'s (storing a file for it first when given `data_dir`)."""
    if data_dir is not None:
        stored = LocalStorage(data_dir).path(source_key(upload_key))
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(b"another stored upload")
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine).begin() as session:
        uploads = UploadRepository(session)
        await uploads.delete([upload_key])
        await uploads.add(upload_key, key_id(token), "media", 15, None)
    await engine.dispose()


def key_id(token: str) -> str:
    return token.split("_")[1]
