"""A service command that cannot reach its database says so in one line naming DATABASE_URL,
without the password and without a traceback, and exits non-zero."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.cli_helpers import clipper

PASSWORD = "s3cret-pw"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["api", "--no-migrate"],
        ["api", "--migrate"],
        ["worker", "--no-migrate"],
        ["worker", "--migrate"],
        ["up", "--no-migrate"],
        ["up"],  # migrates first
    ],
    ids=" ".join,
)
def test_an_unreachable_database_is_one_line_naming_the_setting(
    closed_port: int, command: list[str]
) -> None:
    url = f"postgresql://clipper:{PASSWORD}@127.0.0.1:{closed_port}/clipper"
    result = clipper(*command, DATABASE_URL=url, timeout=30)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"clipper: cannot connect to the database at DATABASE_URL (127.0.0.1:{closed_port}): "
        "connection refused"
    ]
    assert PASSWORD not in result.stdout + result.stderr


def test_a_malformed_database_url_is_one_line_without_the_password() -> None:
    # libpq's own message quotes the malformed part, here the password.
    result = clipper("worker", DATABASE_URL=f"postgresql://clipper:{PASSWORD}%ZZ@127.0.0.1/db")
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "clipper: invalid setting DATABASE_URL: not a valid PostgreSQL connection URL"
    ]
    assert PASSWORD not in result.stdout + result.stderr
