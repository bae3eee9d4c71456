"""Fixtures of the fault suite: source videos (made once), a deployment of real processes on a
private cluster (sharing a DATA_DIR, or only an object store), and a black-holing proxy in
front of that cluster. A failing test shows the tail of every process's log."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.conftest import PrivatePostgres
from tests.faults import invariant
from tests.faults.deployment import Deployment
from tests.media_files import make_video
from tests.moto_server import S3Bucket
from tests.proxy import BlackholeProxy, unix_socket_of


@pytest.fixture(scope="session")
def short_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "short.mp4"
    return make_video(path, 20, size="640x360")


@pytest.fixture(scope="session")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "long.mp4"
    return make_video(path, 40, size="1280x720")


@contextlib.contextmanager
def _deployed(
    cluster: PrivatePostgres, root: Path, source: Path, bucket: S3Bucket | None = None
) -> Iterator[Deployment]:
    """`clipper api` up, with `source` uploaded; the test starts its workers. Every process is
    killed at the end, stopped ones included."""
    deployed = Deployment(cluster, root, bucket)
    try:
        deployed.start(source)
        yield deployed
    finally:
        deployed.close()


@pytest.fixture
def deployment(
    private_postgres: PrivatePostgres, tmp_path: Path, short_source: Path
) -> Iterator[Deployment]:
    """Every process sharing one DATA_DIR, where uploads and clips are kept."""
    with _deployed(private_postgres, tmp_path, short_source) as deployed:
        yield deployed


@pytest.fixture
def deployment_on_s3(
    private_postgres: PrivatePostgres, tmp_path: Path, short_source: Path, s3_bucket: S3Bucket
) -> Iterator[Deployment]:
    """Uploads and clips in a bucket of the moto server; every process with a DATA_DIR of
    its own."""
    with _deployed(private_postgres, tmp_path, short_source, s3_bucket) as deployed:
        yield deployed


@pytest.fixture
def proxy(private_postgres: PrivatePostgres) -> Iterator[BlackholeProxy]:
    """TCP on 127.0.0.1 in front of the private cluster's Unix socket."""
    with BlackholeProxy(unix_socket_of(private_postgres.url)) as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for deployed in getattr(item, "funcargs", {}).values():
            if isinstance(deployed, Deployment):
                report.sections.append(("process logs (tails)", deployed.tails()))
                report.sections.append(("database sessions", invariant.sessions(deployed.url)))
    return report
