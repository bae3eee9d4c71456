"""Fixtures of the fault suite: source videos (made once), a deployment of real processes on a
private cluster, and a black-holing proxy in front of that cluster. A failing test shows the
tail of every process's log."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.conftest import PrivatePostgres
from tests.faults import invariant
from tests.faults.deployment import Deployment
from tests.media_files import make_video
from tests.proxy import BlackholeProxy, unix_socket_of


@pytest.fixture(scope="session")
def short_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "short.mp4"
    return make_video(path, 20, size="640x360")


@pytest.fixture(scope="session")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "long.mp4"
    return make_video(path, 40, size="1280x720")


@pytest.fixture
def deployment(
    private_postgres: PrivatePostgres, tmp_path: Path, short_source: Path
) -> Iterator[Deployment]:
    """`clipper api` up, with `short_source` uploaded; the test starts its workers. Every
    process is killed at the end, stopped ones included."""
    deployed = Deployment(private_postgres, tmp_path)
    try:
        deployed.start(short_source)
        yield deployed
    finally:
        deployed.close()


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
    deployed = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(deployed, Deployment):
        report.sections.append(("process logs (tails)", deployed.tails()))
        report.sections.append(("database sessions", invariant.sessions(deployed.url)))
    return report
