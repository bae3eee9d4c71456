"""Pure parts of the queue: backoff, priorities, the public surface, the import boundary."""

from __future__ import annotations

import ast
import random
import uuid
from pathlib import Path

import pytest

import clipper.queue
from clipper.domain.jobs import Priority
from clipper.queue import QueueConfig, QueueMessage, retry_delay_seconds


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    delays = [retry_delay_seconds(n, base_ms=1000, max_ms=60_000, jitter=0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_only_adds_up_to_its_share() -> None:
    rng = random.Random(7)
    delays = [
        retry_delay_seconds(3, base_ms=1000, max_ms=60_000, jitter=0.2, rng=rng)
        for _ in range(1000)
    ]
    assert min(delays) >= 4.0
    assert max(delays) <= 4.8
    assert len(set(delays)) > 900  # spread, not one value


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay_seconds(0, base_ms=1, max_ms=1, jitter=0)


def test_fast_runs_first_by_rank() -> None:
    ranks = [p.rank for p in (Priority.FAST, Priority.NORMAL, Priority.BULK)]
    assert ranks == [0, 1, 2]  # lower runs first in the queue


def test_a_priority_must_fit_the_column() -> None:
    assert QueueMessage(uuid.uuid4(), -5).priority == -5
    with pytest.raises(ValueError, match="smallint"):
        QueueMessage(uuid.uuid4(), 40_000)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"schema": "Bad-Name"}, "schema"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"concurrency": 0}, "concurrency"),
        ({"visibility_seconds": 0}, "visibility_seconds"),
    ],
)
def test_queue_config_refuses_nonsense(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        QueueConfig(queue="q", **overrides)  # type: ignore[arg-type]


def test_heartbeat_is_a_third_of_the_lease() -> None:
    assert QueueConfig(queue="q", visibility_seconds=90).heartbeat_seconds == 30


def test_public_surface_is_exactly_what_is_intended() -> None:
    exported = clipper.queue.__all__
    kind = {True: 0, False: 1}  # CONSTANTS, then Classes, then functions, each alphabetical
    assert exported == sorted(exported, key=lambda n: (kind[n.isupper()] + (not n[0].isupper()), n))
    assert all(hasattr(clipper.queue, name) for name in exported)
    public = {name for name in vars(clipper.queue) if not name.startswith("_")}
    assert public - set(exported) == set()


def test_the_queue_package_imports_nothing_else_from_clipper() -> None:
    package = Path(clipper.queue.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} reaches outside the queue package"
                assert not (node.module or "").startswith("clipper"), source.name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("clipper") for a in node.names), source.name
