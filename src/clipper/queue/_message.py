"""Value types of the queue: what is published, what a handler receives, how attempts end."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]


MAX_GROUP_LENGTH = 200


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A message to publish: the job it is for, its priority (an integer: LOWER RUNS FIRST,
    FIFO within one priority), an optional JSON payload and an optional group.

    The job id is the idempotency key: a queue holds at most one message per job id.
    Messages of one `group` (a tenant, a customer) take turns with other groups' messages of
    the same priority, and a consumer may cap how many of a group run at once (see
    `QueueAdapter.consume(group_concurrency=...)`).
    """

    job_id: uuid.UUID
    priority: int = 0
    payload: JsonObject | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if not -32768 <= self.priority <= 32767:  # stored as smallint
            raise ValueError(f"priority must be a smallint, got {self.priority}")
        if self.group is not None and not 0 < len(self.group) <= MAX_GROUP_LENGTH:
            raise ValueError(f"group must be 1 to {MAX_GROUP_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class Claim:
    """The fencing handle of one claimed attempt: every settle call carries it."""

    message_id: int
    lease_token: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message as a handler receives it, for one attempt."""

    queue: str
    job_id: uuid.UUID
    priority: int
    payload: JsonObject | None
    attempt: int
    max_attempts: int
    enqueued_at: datetime
    claim: Claim
    # Seconds from when the message became runnable to this claim, on the database clock.
    pickup_delay: float = 0.0
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The last error of a message, as stored with it and in its dead letter."""

    type: str
    message: str
    traceback: str = ""
    # A machine-readable code when the exception carried one (its `code` attribute).
    code: str | None = None

    def as_json(self) -> JsonObject:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "code": self.code,
        }

    @classmethod
    def from_json(cls, data: JsonObject | None) -> ErrorInfo | None:
        if not data:
            return None
        code = data.get("code")
        return cls(
            str(data["type"]),
            str(data["message"]),
            str(data.get("traceback", "")),
            None if code is None else str(code),
        )


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A failed attempt that will run again at `run_after` (database clock)."""

    job_id: uuid.UUID
    attempt: int
    error: ErrorInfo
    run_after: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that used up its attempts (or failed permanently), as stored in `<queue>.dlq`."""

    source_queue: str
    job_id: uuid.UUID
    priority: int
    payload: JsonObject | None
    attempts: int
    error: ErrorInfo
    enqueued_at: datetime
    failed_at: datetime
    group: str | None = None

    def as_json(self) -> JsonObject:
        return {
            "queue": self.source_queue,
            "payload": self.payload,
            "group": self.group,
            "attempts": self.attempts,
            "error": self.error.as_json(),
            "enqueued_at": self.enqueued_at.isoformat(),
            "failed_at": self.failed_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, job_id: uuid.UUID, priority: int, data: JsonObject) -> DeadLetter:
        """Rebuild a dead letter from the payload of its `<queue>.dlq` message."""
        return cls(
            source_queue=str(data["queue"]),
            job_id=job_id,
            priority=priority,
            payload=data.get("payload"),
            attempts=int(data["attempts"]),
            error=ErrorInfo.from_json(data.get("error")) or ErrorInfo("Unknown", ""),
            enqueued_at=datetime.fromisoformat(data["enqueued_at"]),
            failed_at=datetime.fromisoformat(data["failed_at"]),
            group=data.get("group"),
        )


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Messages of one queue by state, read from the store at the time asked."""

    queue: str
    ready: int = 0
    scheduled: int = 0
    active: int = 0
    oldest_ready_age_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class PriorityDepth:
    """Unfinished messages of one queue and priority, read from the store at the time asked."""

    queue: str
    priority: int
    ready: int = 0
    scheduled: int = 0
    active: int = 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What finished and what was picked up in one queue in one minute (database clock),
    from the stats table. The pickup wait is claim time minus when the message became
    runnable: its average and largest in the minute, in milliseconds (0 with none picked up).
    """

    queue: str
    minute: datetime
    completed: int = 0
    retried: int = 0
    failed: int = 0
    dead_lettered: int = 0
    cancelled: int = 0
    picked_up: int = 0
    pickup_avg_ms: float = 0.0
    pickup_max_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One consuming process online (its heartbeat is fresh), from the workers registry.

    `running` holds the job ids of the attempts it ran at its last heartbeat; `concurrency`
    is the sum of its consumers' (the attempts it may run at once)."""

    id: uuid.UUID
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    concurrency: int
    running: tuple[uuid.UUID, ...]
    started_at: datetime
    heartbeat_at: datetime


class CancelOutcome(enum.StrEnum):
    """What `cancel()` did."""

    CANCELLED = "cancelled"  # it was waiting (ready or scheduled): it will never run
    CANCELLING = "cancelling"  # it is running: its handler is being stopped
    FINISHED = "finished"  # it had already completed, failed or been cancelled
    NOT_FOUND = "not found"  # the queue has no message for that job


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What `QueueAdapter.health()` reports."""

    database: bool
    listener: bool
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.database and self.listener
