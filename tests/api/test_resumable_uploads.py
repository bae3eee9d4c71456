"""Resumable uploads (tus 1.0.0) at /api/uploads/resumable: a file sent in parts becomes an
upload like any other; offsets, lengths, tenants and quotas are held to; an interrupted PATCH
keeps what arrived (a real server, its connection cut by a proxy) and the upload resumes to
the same bytes; a finished upload is checked as a one-request one is."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from clipper.db.repositories import ApiKeyRepository
from clipper.db.session import create_engine, session_factory
from clipper.services import resumable
from clipper.storage import LocalStorage, source_key
from tests.api.conftest import ApiFactory, create_key, key_id
from tests.cli_helpers import start_clipper_up
from tests.helpers import wait_event, wait_until
from tests.media_files import make_video
from tests.proxy import CuttingProxy

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}
PREFIX = "/api/uploads/resumable"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("resumable") / "v.mp4", seconds=4).read_bytes()


def _metadata(filename: str) -> str:
    return f"filename {base64.b64encode(filename.encode()).decode()}"


async def _create(
    client: httpx.AsyncClient, length: int, headers: dict[str, str] | None = None
) -> str:
    response = await client.post(
        PREFIX,
        headers={**TUS, "Upload-Length": str(length), **(headers or {})},
    )
    assert response.status_code == 201, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["upload-expires"].endswith("GMT")
    location: str = response.headers["location"]
    assert location.startswith(f"{PREFIX}/")
    return location


async def _patch(
    client: httpx.AsyncClient,
    url: str,
    offset: int,
    data: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.patch(
        url, content=data, headers={**OCTETS, "Upload-Offset": str(offset), **(headers or {})}
    )


async def _offset(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> int:
    response = await client.head(url, headers={**TUS, **(headers or {})})
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


async def _limit(db_url: str, token: str, **values: int) -> None:
    engine = create_engine(db_url, pool_size=1)
    async with session_factory(engine).begin() as session:
        assert await ApiKeyRepository(session).set_limits(key_id(token), **values)
    await engine.dispose()


def _partials(data_dir: Path) -> list[Path]:
    root = data_dir / "resumable"
    return sorted(root.iterdir()) if root.is_dir() else []


def _stored_sources(data_dir: Path) -> list[Path]:
    return sorted(path for path in (data_dir / "sources").rglob("*") if path.is_file())


async def test_a_file_sent_in_several_patches_becomes_an_upload_a_job_can_use(
    client: httpx.AsyncClient, data_dir: Path, video: bytes
) -> None:
    url = await _create(client, len(video), {"Upload-Metadata": _metadata("talk.mp4")})
    assert await _offset(client, url) == 0
    thirds = [0, len(video) // 3, 2 * len(video) // 3, len(video)]
    for start, end in itertools.pairwise(thirds):
        response = await _patch(client, url, start, video[start:end])
        assert response.status_code == 204, response.text
        assert int(response.headers["upload-offset"]) == end
        assert response.headers["tus-resumable"] == "1.0.0"
    key = response.headers["clipper-upload-key"]
    assert key.startswith("up_")
    stored = LocalStorage(data_dir).path(source_key(key))
    assert stored.read_bytes() == video

    head = await client.head(url, headers=TUS)
    assert head.headers["clipper-upload-key"] == key  # the key, again, after the fact
    assert int(head.headers["upload-offset"]) == int(head.headers["upload-length"]) == len(video)
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["upload-metadata"] == _metadata("talk.mp4")
    job = await client.post(
        "/api/jobs",
        json={"sourceType": "upload", "uploadKey": key, "start": "00:00:01", "end": "00:00:03"},
    )
    assert job.status_code == 202, job.text
    # Finishing again answers the same key and changes nothing.
    again = await _patch(client, url, len(video), b"")
    assert (again.status_code, again.headers["clipper-upload-key"]) == (204, key)


async def test_creation_with_upload_can_send_the_whole_file_at_once(
    client: httpx.AsyncClient, video: bytes
) -> None:
    response = await client.post(
        PREFIX, content=video, headers={**OCTETS, "Upload-Length": str(len(video))}
    )
    assert response.status_code == 201, response.text
    assert int(response.headers["upload-offset"]) == len(video)
    assert response.headers["clipper-upload-key"].startswith("up_")


async def test_a_wrong_offset_is_a_409_and_changes_nothing(
    client: httpx.AsyncClient, data_dir: Path, video: bytes
) -> None:
    url = await _create(client, len(video))
    assert (await _patch(client, url, 0, video[:1000])).status_code == 204
    for wrong in (0, 999, 1001):
        refused = await _patch(client, url, wrong, video[wrong : wrong + 10])
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "UPLOAD_OFFSET_MISMATCH"
        assert "holds 1000 bytes" in refused.json()["error"]["message"]
    assert await _offset(client, url) == 1000
    [folder] = _partials(data_dir)
    assert (folder / "data").read_bytes() == video[:1000]


async def test_over_max_input_mb_is_a_413_in_the_words_of_the_one_request_route(
    make_client: ApiFactory, data_dir: Path
) -> None:
    client: httpx.AsyncClient = await make_client(max_input_mb=1)
    over = b"\x00" * (3 * 2**19)  # 1.5 MB
    one_request = await client.post("/api/uploads", files={"file": ("big.bin", over)})
    assert one_request.status_code == 413
    refused = await client.post(PREFIX, headers={**TUS, "Upload-Length": str(len(over))})
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert refused.json()["error"]["message"] == one_request.json()["error"]["message"]
    assert "1 MB (MAX_INPUT_MB)" in refused.json()["error"]["message"]
    assert _partials(data_dir) == []
    options = await client.options(PREFIX)
    assert options.status_code == 204
    assert options.headers["tus-max-size"] == str(2**20)
    assert options.headers["tus-version"] == "1.0.0"
    assert set(options.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
    }
    # A body past the upload's own length is refused too, and nothing of it is kept.
    url = await _create(client, 100)
    past = await _patch(client, url, 0, b"x" * 101)
    assert past.status_code == 413
    assert "Upload-Length (100 bytes)" in past.json()["error"]["message"]
    assert await _offset(client, url) == 0


async def test_the_protocol_headers_are_required(client: httpx.AsyncClient) -> None:
    unversioned = await client.post(PREFIX, headers={"Upload-Length": "10"})
    assert unversioned.status_code == 412
    assert unversioned.headers["tus-version"] == "1.0.0"
    assert unversioned.json()["error"]["code"] == "TUS_VERSION_UNSUPPORTED"
    no_length = await client.post(PREFIX, headers=TUS)
    assert no_length.status_code == 400
    assert no_length.json()["error"]["details"] == [
        {"field": "Upload-Length", "message": "is required"}
    ]
    assert (await client.post(PREFIX, headers={**TUS, "Upload-Length": "-1"})).status_code == 400
    odd_metadata = await client.post(
        PREFIX, headers={**TUS, "Upload-Length": "10", "Upload-Metadata": "filename !!"}
    )
    assert odd_metadata.status_code == 400
    url = await _create(client, 10)
    as_json = await client.patch(url, content=b"0123456789", headers={**TUS, "Upload-Offset": "0"})
    assert as_json.status_code == 415
    no_offset = await client.patch(url, content=b"0123456789", headers=OCTETS)
    assert no_offset.status_code == 400
    assert no_offset.json()["error"]["details"][0]["field"] == "Upload-Offset"
    assert no_offset.headers["tus-resumable"] == "1.0.0"  # errors carry it too


async def test_another_tenants_upload_is_a_404_as_a_missing_one_is(
    make_client: ApiFactory, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    owner = {"X-API-Key": await create_key(db_url)}
    other = {"X-API-Key": await create_key(db_url)}
    url = await _create(client, 100, owner)
    assert (await _patch(client, url, 0, b"x" * 10, owner)).status_code == 204
    missing = f"{PREFIX}/{'0' * 32}"
    for target in (url, missing, f"{PREFIX}/not-an-id"):
        assert (await client.head(target, headers={**TUS, **other})).status_code == 404
        patched = await _patch(client, target, 10, b"y" * 10, other)
        assert patched.status_code == 404
        assert patched.json()["error"]["code"] == "NOT_FOUND"
        assert (await client.delete(target, headers={**TUS, **other})).status_code == 404
    assert await _offset(client, url, owner) == 10  # untouched
    admin = {"X-API-Key": await create_key(db_url, admin=True)}
    assert await _offset(client, url, admin) == 10  # an admin reaches every tenant
    assert (await client.head(url, headers=TUS)).status_code == 401


async def test_delete_removes_the_partial_data(
    client: httpx.AsyncClient, data_dir: Path, video: bytes
) -> None:
    url = await _create(client, len(video))
    assert (await _patch(client, url, 0, video[:5000])).status_code == 204
    [folder] = _partials(data_dir)
    assert (folder / "data").stat().st_size == 5000
    deleted = await client.delete(url, headers=TUS)
    assert deleted.status_code == 204
    assert not folder.exists()
    assert (await client.head(url, headers=TUS)).status_code == 404
    assert (await _patch(client, url, 5000, video[5000:])).status_code == 404


async def test_a_corrupt_or_truncated_finished_upload_is_the_422_of_the_one_request_route(
    client: httpx.AsyncClient, data_dir: Path, video: bytes
) -> None:
    before = _stored_sources(data_dir)
    corrupt = b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 1000
    for content in (corrupt, video[: len(video) // 2]):
        one_request = await client.post("/api/uploads", files={"file": ("v.mp4", content)})
        assert one_request.status_code == 422
        url = await _create(client, len(content))
        refused = await _patch(client, url, 0, content)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == one_request.json()["error"]["code"]
        assert refused.json()["error"]["details"] == one_request.json()["error"]["details"]
        assert (await client.head(url, headers=TUS)).status_code == 404  # gone, as refused
    assert _stored_sources(data_dir) == before
    assert _partials(data_dir) == []


async def test_the_quota_counts_unfinished_uploads_and_the_rate_counts_creations(
    make_client: ApiFactory, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    token = await create_key(db_url)
    await _limit(db_url, token, max_upload_bytes=1000, rate_per_minute=3)
    key = {"X-API-Key": token}
    first = await _create(client, 600, key)
    over = await client.post(PREFIX, headers={**TUS, "Upload-Length": "600", **key})
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "UPLOAD_QUOTA"
    assert int(over.headers["retry-after"]) >= 1
    for offset in range(0, 100, 10):  # PATCHes and HEADs are not counted
        assert (await _patch(client, first, offset, b"z" * 10, key)).status_code == 204
        await _offset(client, first, key)
    assert (await client.delete(first, headers={**TUS, **key})).status_code == 204
    await _create(client, 600, key)  # its room is free again
    limited = await client.post(PREFIX, headers={**TUS, "Upload-Length": "1", **key})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"


async def test_an_expired_upload_is_gone(
    client: httpx.AsyncClient, data_dir: Path, video: bytes
) -> None:
    url = await _create(client, len(video))
    assert (await _patch(client, url, 0, video[:100])).status_code == 204
    [folder] = _partials(data_dir)
    record = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**record, "expires_at": time.time() - 1}))
    assert (await client.head(url, headers=TUS)).status_code == 404
    assert not folder.exists()


async def _stalling(
    first: bytes, consumed: asyncio.Event, never: asyncio.Event
) -> AsyncIterator[bytes]:
    yield first
    consumed.set()  # the server asks for more: it has the first part
    await never.wait()
    yield b"never sent"


async def test_a_patch_whose_client_went_silent_gives_way_to_the_resuming_one(
    client: httpx.AsyncClient, video: bytes
) -> None:
    """A resuming client may reach the server while it still reads the dead connection: the
    new PATCH asks the old one to stop, which keeps what it had; the offset then tells."""
    url = await _create(client, len(video))
    consumed, never = asyncio.Event(), asyncio.Event()
    headers = {**OCTETS, "Upload-Offset": "0", "Content-Length": str(len(video))}
    silent = asyncio.create_task(
        client.patch(url, content=_stalling(video[:1000], consumed, never), headers=headers)
    )
    await wait_event(consumed, what="the first part to arrive")
    resumed = await _patch(client, url, 0, video)  # offset 0: what HEAD said meanwhile
    assert resumed.status_code == 409, resumed.text
    ended = await silent
    assert (ended.status_code, ended.headers["upload-offset"]) == (204, "1000")
    finished = await _patch(client, url, 1000, video[1000:])
    assert finished.status_code == 204
    assert "clipper-upload-key" in finished.headers


async def test_a_body_that_stalls_ends_its_patch_and_keeps_what_came(
    client: httpx.AsyncClient, video: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resumable, "IDLE_SECONDS", 0.5)
    url = await _create(client, len(video))
    consumed, never = asyncio.Event(), asyncio.Event()
    headers = {**OCTETS, "Upload-Offset": "0", "Content-Length": str(len(video))}
    ended = await client.patch(
        url, content=_stalling(video[:1000], consumed, never), headers=headers
    )
    assert (ended.status_code, ended.headers["upload-offset"]) == (204, "1000")
    assert await _offset(client, url) == 1000


# --- a real server, a real dropped connection -----------------------------------------------


@pytest.fixture
def api_behind_a_proxy(db_url: str, tmp_path: Path) -> Iterator[tuple[str, CuttingProxy, Path]]:
    """`clipper api` (keys off), and a proxy in front of it: (its address, the proxy, DATA_DIR)."""
    data_dir = tmp_path / "data"
    process, address = start_clipper_up(db_url, command="api", DATA_DIR=str(data_dir))
    host, port = httpx.URL(address).host, httpx.URL(address).port
    assert port is not None
    try:
        with CuttingProxy((host, port)) as proxy:
            yield address, proxy, data_dir
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_a_patch_cut_mid_body_keeps_its_bytes_and_the_upload_resumes_to_the_same_file(
    api_behind_a_proxy: tuple[str, CuttingProxy, Path], video: bytes
) -> None:
    address, proxy, data_dir = api_behind_a_proxy
    direct = httpx.Client(base_url=address, timeout=30)
    through = httpx.Client(base_url=proxy.url, timeout=30)
    with direct, through:
        created = through.post(PREFIX, headers={**TUS, "Upload-Length": str(len(video))})
        assert created.status_code == 201
        url = created.headers["location"]
        half = len(video) // 2
        proxy.cut_after(half)  # within the PATCH's body: its headers are far fewer bytes
        with pytest.raises(httpx.TransportError):
            through.patch(url, content=video, headers={**OCTETS, "Upload-Offset": "0"})
        assert proxy.cuts == 1

        def offset() -> int:
            response = direct.head(url, headers=TUS)
            assert response.status_code == 200
            return int(response.headers["upload-offset"])

        # The server learns of the cut as the connection closes, and records what came.
        wait_until(lambda: offset() > 0, message="the cut PATCH's bytes to be recorded")
        kept = offset()
        assert 0 < kept < half
        [folder] = _partials(data_dir)
        assert (folder / "data").read_bytes()[:kept] == video[:kept]

        resumed = through.patch(
            url, content=video[kept:], headers={**OCTETS, "Upload-Offset": str(kept)}
        )
        assert resumed.status_code == 204, resumed.text
        key = resumed.headers["clipper-upload-key"]
        stored = LocalStorage(data_dir).path(source_key(key)).read_bytes()
        assert hashlib.sha256(stored).digest() == hashlib.sha256(video).digest()
        job = direct.post(
            "/api/jobs",
            json={"sourceType": "upload", "uploadKey": key, "start": "00:00:01", "end": "00:00:02"},
        )
        assert job.status_code == 202, job.text
