"""A real S3-compatible server for the object storage tests: moto's standalone server, a
process of its own on 127.0.0.1, started once per session. Each test gets a bucket of its own
and the AWS_* variables that point boto3 at the server (fake credentials: moto takes any)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_START_DEADLINE_SECONDS = 30
ACCESS_KEY = "AKIACLIPPERTEST00000"
SECRET_KEY = "clipper-test-secret-key-never-logged"


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}/clipper"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """A moto server on a free port of 127.0.0.1 while the block runs: its endpoint URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_DEADLINE_SECONDS
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"moto server exited with {server.returncode}")
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start in time") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A new bucket, with the AWS_* variables set for this test."""
    bucket = S3Bucket(moto_endpoint, f"clipper-{uuid.uuid4().hex[:12]}")
    for name, value in bucket.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
