"""Job statuses, event types, and the one state machine that decides every transition."""

from __future__ import annotations

import enum

__all__ = [
    "EventType",
    "InvalidTransitionError",
    "JobStatus",
    "Priority",
    "SourceType",
    "check",
    "sources_of",
]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Priority(enum.StrEnum):
    """Clip priority. The queue runs FAST before NORMAL before BULK, FIFO within each."""

    FAST = "fast"
    NORMAL = "normal"
    BULK = "bulk"

    @property
    def rank(self) -> int:
        """The queue's integer priority; LOWER RUNS FIRST (claims order by it ascending)."""
        return _RANKS[self]


# The one place where priority names meet numbers (the earlier version inverted them).
_RANKS = {Priority.FAST: 0, Priority.NORMAL: 1, Priority.BULK: 2}


class SourceType(enum.StrEnum):
    UPLOAD = "upload"
    YOUTUBE = "youtube"  # a URL source, fetched only when ENABLE_YTDLP is on


class EventType(enum.StrEnum):
    CREATED = "created"
    PROCESSING = "processing"
    PROGRESS = "progress"
    SUBTITLES = "subtitles"  # where a done job's subtitles came from (domain.subtitles)
    RETRY = "retry"
    DONE = "done"
    FAILED = "failed"
    DLQ = "dlq"
    REQUEUED = "requeued"
    CANCELLED = "cancelled"


class InvalidTransitionError(Exception):
    """A status change the lifecycle does not allow."""


_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.CANCELLED}),
    # processing -> processing: a redelivered attempt after its worker died.
    JobStatus.PROCESSING: frozenset(
        {JobStatus.PROCESSING, JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.DONE: frozenset(),
    # failed -> queued: an operator requeues a dead letter.
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset(),
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The statuses a job may be in to move to `target` (for optimistic updates)."""
    return frozenset(status for status, targets in _ALLOWED.items() if target in targets)


def check(current: JobStatus, target: JobStatus) -> bool:
    """True when `current -> target` changes the job, False when it is a no-op (a terminal
    status repeated); raises InvalidTransitionError for anything the lifecycle forbids."""
    if current == target and current.terminal:
        return False
    if target not in _ALLOWED[current]:
        raise InvalidTransitionError(f"a {current} job cannot become {target}")
    return True
