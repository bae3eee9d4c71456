"""The invariant every fault scenario ends with ("never twice, never hung"): once the system is
quiet, every accepted job is `done` exactly once with a valid clip, or `failed` with a clear
code and a dead-letter record; no job is left queued or processing, no message ready, active or
leased; and no job is done twice anywhere in the table. Clips are read where the deployment
keeps them: its shared DATA_DIR, or an object store (a ClipReader either way)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import ClientError

from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.errors import UnreadableMediaError
from clipper.media.probe import probe
from tests.faults.waiting import poll
from tests.moto_server import S3Bucket

QUEUE = "clips"
# The queue's schema (tests/conftest.py QUEUE_SCHEMA) is spelled out in the queries below.

_BUSY = """
SELECT
  (SELECT count(*) FROM jobs WHERE status IN ('queued', 'processing')),
  (SELECT count(*) FROM clipper_queue.messages
    WHERE (queue = %(queue)s AND state IN ('ready', 'active')) OR lease_token IS NOT NULL)
"""

_JOBS = """
SELECT j.id::text, j.status, j.attempts, j.start_ms, j.end_ms, j.result_video_key,
       j.result_subtitles_key, j.error_code, j.updated_at,
       (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.type = 'done'),
       EXISTS (SELECT 1 FROM dlq_jobs d WHERE d.job_id = j.id),
       m.state, m.lease_token IS NOT NULL
FROM jobs j
LEFT JOIN clipper_queue.messages m ON m.queue = %(queue)s AND m.job_id = j.id
ORDER BY j.created_at
"""

_DONE_TOTALS = """
SELECT (SELECT count(*) FROM job_events WHERE type = 'done'),
       (SELECT count(*) FROM jobs WHERE status = 'done')
"""


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """One autocommit query on a connection of the test's own (named so that terminating
    Clipper's backends never hits it)."""
    with psycopg.connect(url, autocommit=True, application_name="fault-test") as conn:
        cursor = conn.execute(sql.encode(), params)
        return cursor.fetchall() if cursor.description else []


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    status: str
    attempts: int
    start_ms: int
    end_ms: int
    result_video_key: str | None
    result_subtitles_key: str | None
    error_code: str | None
    updated_at: datetime
    done_events: int
    dead_lettered: bool
    message_state: str | None
    leased: bool


def jobs(url: str) -> dict[str, JobRow]:
    return {row[0]: JobRow(*row) for row in query(url, _JOBS, {"queue": QUEUE})}


def sessions(url: str) -> str:
    """Clipper's database sessions, and what each waits on (for a failure report)."""
    try:
        rows = query(
            url,
            "SELECT pid, application_name, state, wait_event_type, wait_event,"
            " pg_blocking_pids(pid), left(regexp_replace(query, '\\s+', ' ', 'g'), 120)"
            " FROM pg_stat_activity WHERE application_name LIKE 'clipper%' ORDER BY pid",
        )
    except psycopg.Error as exc:
        return f"(database unreachable: {exc})"
    return "\n".join(" | ".join(str(field) for field in row) for row in rows)


def busy(url: str) -> tuple[int, int]:
    """(jobs queued or processing, messages ready, active or leased)."""
    [(unfinished, messages)] = query(url, _BUSY, {"queue": QUEUE})
    return int(unfinished), int(messages)


def wait_quiet(url: str, timeout: float) -> float:
    """Wait until nothing is queued, processing, ready, active or leased; the time it was."""
    poll(lambda: busy(url) == (0, 0), timeout=timeout, message=f"quiet ({_describe_busy(url)})")
    return time.time()


def _describe_busy(url: str) -> str:
    try:
        unfinished, messages = busy(url)
    except psycopg.Error as exc:
        return f"database unreachable: {exc}"
    return f"when asked: {unfinished} job(s) unfinished, {messages} message(s) busy"


# A job's result key -> a local file holding that clip while the context is open, or None when
# there is no such clip. One per place clips are kept, so that the checks below are the same
# whichever storage the deployment runs with.
ClipReader = Callable[[str], AbstractContextManager[Path | None]]


def clips_on_disk(data_dir: Path) -> ClipReader:
    """Clips in the files under a DATA_DIR (LocalStorage's layout: the key is the path)."""

    @contextmanager
    def read(key: str) -> Iterator[Path | None]:
        path = data_dir / key
        yield path if path.is_file() else None

    return read


def clips_in_bucket(bucket: S3Bucket) -> ClipReader:
    """Clips in an object store, each downloaded to a temporary file for the check. Objects are
    named as S3Storage.object_key names them, the key under the STORAGE_URL's prefix; read
    with a client of the test's own, so that a naming bug in the product is not mirrored."""
    client = bucket.client()
    prefix = bucket.url.removeprefix(f"s3://{bucket.name}").strip("/")

    @contextmanager
    def read(key: str) -> Iterator[Path | None]:
        with tempfile.TemporaryDirectory(prefix="clipper-invariant-") as folder:
            target = Path(folder) / Path(key).name
            try:
                client.download_file(bucket.name, f"{prefix}/{key}" if prefix else key, str(target))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
            yield target if target.is_file() else None

    return read


def violations(url: str, clips: ClipReader, accepted: Iterable[str]) -> list[str]:
    """Everything that breaks the invariant, for every job in the table (a job the API
    accepted but whose answer was lost counts too); empty when it holds."""
    rows = jobs(url)
    found = [f"accepted job {job} has no row" for job in accepted if job not in rows]
    for row in rows.values():
        found += [
            f"job {row.id} ({row.status}, attempt {row.attempts}): {v}" for v in _check(row, clips)
        ]
    done_events, done_jobs = query(url, _DONE_TOTALS)[0]
    if done_events != done_jobs:
        found.append(f"{done_events} `done` events for {done_jobs} done jobs: some job done twice")
    return found


def _check(row: JobRow, clips: ClipReader) -> list[str]:
    found = []
    if row.leased:
        found.append("its message still holds a lease")
    if row.status == "done":
        if row.done_events != 1:
            found.append(f"{row.done_events} `done` events (exactly one expected)")
        if row.message_state != "completed":
            found.append(f"done, but its message is {row.message_state!r}")
        found += _check_clip(row, clips)
    elif row.status == "failed":
        if not row.error_code:
            found.append("failed without an error code")
        if not row.dead_lettered:
            found.append("failed without a dead-letter record")
        if row.done_events:
            found.append(f"failed after {row.done_events} `done` event(s)")
        if row.message_state != "failed":
            found.append(f"failed, but its message is {row.message_state!r}")
    else:
        found.append("not finished")
    return found


def _check_clip(row: JobRow, clips: ClipReader) -> list[str]:
    if row.result_video_key is None:
        return ["done without a result"]
    with clips(row.result_video_key) as path:
        if path is None:
            return [f"its clip {row.result_video_key} does not exist"]
        return _check_media(row, path)


def _check_media(row: JobRow, path: Path) -> list[str]:
    """The clip at `path` is a readable video lasting what the job asked."""
    try:
        info = asyncio.run(probe(path))
    except UnreadableMediaError as exc:
        return [f"its clip is unreadable: {exc}"]
    expected = row.end_ms - row.start_ms
    found = [] if info.has_video else ["its clip has no video"]
    if abs(info.duration_ms - expected) > DURATION_TOLERANCE_MS:
        found.append(f"its clip lasts {info.duration_ms} ms, {expected} ms asked")
    return found


def assert_holds(url: str, clips: ClipReader, accepted: Collection[str]) -> dict[str, JobRow]:
    """Fail with every violation listed; the job rows when it holds."""
    found = violations(url, clips, accepted)
    assert not found, f"{len(found)} violation(s) of the invariant:\n" + "\n".join(found[:30])
    return jobs(url)


def summary(rows: Iterable[JobRow]) -> str:
    statuses = Counter(row.status for row in rows)
    return ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))


@dataclass(frozen=True, slots=True)
class Fault:
    """When a fault was injected: on the wall clock, to compare with the database's
    timestamps, and on the monotonic clock, for deadlines."""

    name: str
    at: float
    monotonic: float

    def elapsed(self) -> float:
        return time.monotonic() - self.monotonic


def inject(name: str) -> Fault:
    """Call right before injecting the fault."""
    return Fault(name, time.time(), time.monotonic())


def report_recovery(url: str, fault: Fault, quiet_at: float, hit: Collection[str] = ()) -> str:
    """How long after the fault work resumed, the jobs it hit were done, and all was quiet;
    printed, so `pytest -s` shows it."""
    [(first_done, hit_done)] = query(
        url,
        "SELECT (SELECT min(created_at) FROM job_events"
        "        WHERE type = 'done' AND created_at > to_timestamp(%(at)s)),"
        "       (SELECT max(created_at) FROM job_events"
        "        WHERE type = 'done' AND job_id::text = ANY(%(hit)s))",
        {"at": fault.at, "hit": list(hit)},
    )
    parts = [f"first job done {_after(fault, first_done)}"]
    if hit:
        parts.append(f"the {len(hit)} job(s) it hit done {_after(fault, hit_done)}")
    parts.append(f"quiet {quiet_at - fault.at:.1f}s")
    line = f"[recovery] {fault.name}: " + ", ".join(parts) + " after the fault"
    print(line)
    return line


def _after(fault: Fault, moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment.timestamp() - fault.at:.1f}s"
