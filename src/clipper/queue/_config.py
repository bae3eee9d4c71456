"""The queue's own settings object: the queue package reads no environment itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._deadlines import ConnectionTimeouts
from ._pooling import POOLERS, Pooler

# fullmatch: `$` would also accept a trailing newline, which is no SQL identifier.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """How the engine behaves. Clipper builds it from its settings; tests build it directly.

    `queue` is the one the adapter publishes to and consumes from when a call names none.
    """

    queue: str
    schema: str = "clipper_queue"
    visibility_seconds: float = 90.0
    max_attempts: int = 3
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 60_000
    backoff_jitter: float = 0.2
    concurrency: int = 4
    poll_interval_seconds: float = 2.0
    shutdown_grace_seconds: float = 30.0
    retention_hours: float = 72.0
    retention_batch_size: int = 1000
    # How long the per-minute stats are kept.
    stats_retention_days: float = 14.0
    pool_max_size: int = 10
    # Longest pause between reconnect attempts after the database went away.
    reconnect_max_seconds: float = 5.0
    # Longest pause of claiming after repeated systemic failures (disk full, database away).
    systemic_pause_max_seconds: float = 30.0
    # How long start() waits for the database before giving up.
    startup_timeout_seconds: float = 30.0
    # Deadlines of every connection and statement the engine makes (see _deadlines.py);
    # None: the defaults, with statements bounded by half the visibility window (at most 15 s).
    timeouts: ConnectionTimeouts | None = None
    # "transaction": the database URL leads to a transaction-pooling PgBouncer (or any pooler
    # that gives each transaction whichever server connection is free). Then no statement is
    # prepared, no startup option is sent, the server-side timeouts are the role's defaults in
    # the database (start() sets them) and nothing LISTENs through it. See _pooling.py.
    pooler: Pooler | None = None
    # Where the LISTEN connection goes instead of the database URL: PostgreSQL itself, past a
    # transaction pooler (LISTEN needs a session of its own). Unset with a pooler: poll-only,
    # pickup within poll_interval_seconds. Not in repr: it may hold a password.
    listen_url: str | None = field(default=None, repr=False)
    # What a consuming process reports as its version in the workers registry (the
    # application's own version: the queue cannot know it).
    worker_version: str = ""

    def __post_init__(self) -> None:
        if self.pooler is not None and self.pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {sorted(POOLERS)} or None")
        if not _IDENTIFIER.fullmatch(self.schema):
            raise ValueError(
                f"queue schema must be a lower-case SQL identifier, got {self.schema!r}"
            )
        if self.visibility_seconds <= 0:
            raise ValueError("visibility_seconds must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts counts the first run and must be at least 1")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.deadlines.statement_seconds >= self.visibility_seconds:
            # A heartbeat that may hang longer than the lease cannot keep the lease.
            raise ValueError("the statement timeout must be shorter than visibility_seconds")

    @property
    def deadlines(self) -> ConnectionTimeouts:
        return self.timeouts or ConnectionTimeouts.for_visibility(self.visibility_seconds)

    @property
    def poll_only(self) -> bool:
        """No LISTEN: through a transaction pooler a LISTEN would be left on whichever server
        connection ran it and receive nothing, silently. Consumers then find work by polling."""
        return self.pooler == "transaction" and self.listen_url is None

    @property
    def heartbeat_seconds(self) -> float:
        """Leases are renewed three times per visibility window, so one late beat costs nothing."""
        return self.visibility_seconds / 3

    @property
    def worker_stale_seconds(self) -> float:
        """A registered worker whose heartbeat is older than three heartbeats is gone: two
        late beats do not hide it, a killed process drops off within one visibility window."""
        return 3 * self.heartbeat_seconds


def dead_letter_queue_name(queue: str) -> str:
    """`clips` dead-letters into `clips.dlq`."""
    return f"{queue}.dlq"
