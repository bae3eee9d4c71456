"""A full disk under the API: 507 STORAGE_FULL (never the database's 503), no half-written
file left behind, and uploads work again once space is freed. The disks are real tmpfs mounts
of a few MB (CI runs as root, so a failing mount fails the test)."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from clipper.api import create_app
from tests.api.conftest import ApiFactory, settings_for
from tests.media_files import make_video


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: 4m, 24m) at `mount`, unmounted however the block
    ends."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def fill(folder: Path, leave: int) -> Path:
    """A filler file that uses up all of `folder`'s disk but `leave` bytes."""
    filler = folder / "filler"
    filler.write_bytes(b"\0" * (free_bytes(folder) - leave))
    return filler


def files_in(folder: Path) -> list[Path]:
    return [Path(root, name) for root, _, names in os.walk(folder) for name in names]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR on a 4 MB tmpfs (replaces tests/api/conftest.py's, for make_client)."""
    with tmpfs(tmp_path / "data", "4m") as mount:
        yield mount


def assert_storage_full(response: httpx.Response, *hidden: Path) -> None:
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "STORAGE_FULL"
    assert "database" not in error["message"]
    assert error["correlationId"] == response.headers["x-request-id"]
    for secret in ("Errno", "Traceback", "OSError", *map(str, hidden)):
        assert secret not in response.text


def storage_full_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("storage full")]


async def test_an_upload_larger_than_the_free_space_is_507_and_works_once_space_is_freed(
    make_client: ApiFactory, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    video = make_video(tmp_path / "talk.mp4", seconds=10)  # about 1 MB
    filler = fill(data_dir, leave=128 * 1024)
    assert video.stat().st_size > free_bytes(data_dir)

    with video.open("rb") as file:
        refused = await client.post("/api/uploads", files={"file": ("talk.mp4", file)})
    assert_storage_full(refused, data_dir, tmp_path)
    assert files_in(data_dir) == [filler]  # no partial upload left
    logged = storage_full_logs(caplog)
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (logging.ERROR, "storage full: no space left on DATA_DIR; answering 507")
    ]

    filler.unlink()
    with video.open("rb") as file:
        accepted = await client.post("/api/uploads", files={"file": ("talk.mp4", file)})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["sizeBytes"] == video.stat().st_size
    assert [path.read_bytes() for path in files_in(data_dir)] == [video.read_bytes()]


async def test_an_upload_streams_into_storage_without_a_copy_in_the_temporary_folder(
    make_client: ApiFactory,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Starlette's form parser spooled every file past 1 MB to the temporary folder, whole:
    with a 1 MB one, a 3 MB upload was a 507. Streamed, it never touches that folder."""
    client = await make_client()
    video = make_video(tmp_path / "talk.mp4", seconds=5)
    padded = video.read_bytes() + b"\0" * (3 << 20)  # still a readable MP4, now over 3 MB
    with tmpfs(tmp_path / "spool", "1m") as spool, monkeypatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(spool))
        stored = await client.post("/api/uploads", files={"file": ("big.mp4", padded)})
        assert stored.status_code == 201, stored.text
        assert files_in(spool) == []
    assert [path.read_bytes() for path in files_in(data_dir)] == [padded]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/srv/secret"), 507, "STORAGE_FULL"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "/srv/secret"), 507, "STORAGE_FULL"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), 503, "UNAVAILABLE"),
        (TimeoutError("timed out"), 503, "UNAVAILABLE"),
    ],
)
async def test_an_os_error_escaping_a_route_is_507_only_when_the_disk_is_full(
    data_dir: Path, db_url: str, error: OSError, status: int, code: str
) -> None:
    app = create_app(settings_for(data_dir=data_dir), db_url)
    _raising_route(app, error)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        response = await client.get("/raises")
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert "/srv/secret" not in response.text


def _raising_route(app: FastAPI, error: OSError) -> None:
    async def raises() -> None:
        raise error

    app.add_api_route("/raises", raises)
