"""A Clipper deployment of real processes on a private PostgreSQL cluster: `clipper api` and any
number of workers, each logging JSON lines to a file of its own. They share one DATA_DIR, or,
given an object store, nothing but the database and the bucket: each process then has a
DATA_DIR (and so a scratch folder) of its own, as on machines that share no disk."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cli_helpers import CLIPPER, environment
from tests.conftest import PrivatePostgres
from tests.faults import invariant
from tests.faults.invariant import ClipReader, Fault, JobRow, clips_in_bucket, clips_on_disk
from tests.faults.processes import Service, free_port
from tests.faults.waiting import poll
from tests.moto_server import S3Bucket

# Short timings, so that a lost lease is noticed, and a failure retried, within seconds.
VISIBILITY_SEC = 4.0
TIMINGS = {
    "QUEUE_VISIBILITY_SEC": str(VISIBILITY_SEC),
    "QUEUE_POLL_INTERVAL_SEC": "0.5",
    "QUEUE_RETRY_BACKOFF_MS_BASE": "100",
    "QUEUE_RETRY_BACKOFF_MS_MAX": "500",
    "QUEUE_SHUTDOWN_GRACE_SEC": "1",
    "QUEUE_CONCURRENCY": "2",
    "QUEUE_MAX_ATTEMPTS": "3",
    # A process frozen inside a transaction (SIGSTOP, a VM pause) holds its row locks until
    # the server ends the session: this must happen before its lease runs out, or the worker
    # taking over blocks on the job row.
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC": "3",
}
MAX_ATTEMPTS = int(TIMINGS["QUEUE_MAX_ATTEMPTS"])
STARTUP_TIMEOUT = 30.0
QUIET_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class Clip:
    start: str
    end: str
    priority: str = "normal"

    def body(self, upload_key: str) -> dict[str, str]:
        return {
            "sourceType": "upload",
            "uploadKey": upload_key,
            "start": self.start,
            "end": self.end,
            "priority": self.priority,
        }


# Both start between keyframes: re-encoded, so FFmpeg runs long enough to be hit mid-cut.
SHORT = Clip("00:00:01.500", "00:00:09.500")  # of the 20 s 640x360 source: about a second
LONG = Clip("00:00:01.500", "00:00:31.500")  # of the 40 s 720p source: well past a lease


def _is_consuming(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and str(record.get("message", "")).startswith(
        "consuming 'clips'"
    )


def attempts_running(worker: Service) -> float | None:
    """Attempts the worker has claimed and whose handler has not ended yet, from its own
    metrics; None when it does not answer."""
    try:
        metrics = worker.scrape()
    except httpx.HTTPError:
        return None
    claimed = metrics.total("clipper_queue_claimed_total", queue="clips")
    ended = metrics.total("clipper_queue_handler_duration_seconds_count", queue="clips")
    return claimed - ended


def wait_idle(worker: Service, *, timeout: float, what: str) -> None:
    """Until every attempt the worker started has ended (a stale one: tried to finish)."""
    poll(lambda: attempts_running(worker) == 0, timeout=timeout, message=f"{worker.name} {what}")


class Deployment:
    def __init__(
        self, cluster: PrivatePostgres, root: Path, bucket: S3Bucket | None = None
    ) -> None:
        """With `bucket`, uploads and clips live in it (STORAGE_URL) and every process gets
        a DATA_DIR of its own (data_dir_of); without, all share `data_dir`."""
        self.cluster = cluster
        self.url = cluster.url
        self.bucket = bucket
        self.data_dir = root / "data"
        self._disks = root / "disks"
        self.clips: ClipReader = (
            clips_on_disk(self.data_dir) if bucket is None else clips_in_bucket(bucket)
        )
        self._logs = root / "logs"
        self._logs.mkdir()
        self.services: list[Service] = []
        self.accepted: list[str] = []
        self.upload_key = ""
        self._http: httpx.Client | None = None

    def start(self, source: Path) -> None:
        """The API, and `source` uploaded through it (the jobs' default source)."""
        api = self._spawn("api", [*CLIPPER, "api"], API_PORT="0")
        line = api.wait_for_output(
            lambda text: text.startswith("Clipper API on "), timeout=STARTUP_TIMEOUT, what="API up"
        )
        self._http = httpx.Client(base_url=line.split()[3], timeout=10)
        self.upload_key = self.upload(source)

    @property
    def http(self) -> httpx.Client:
        assert self._http is not None, "start() the deployment first"
        return self._http

    def data_dir_of(self, name: str) -> Path:
        """The DATA_DIR of the process called `name`: the shared one, or (with an object
        store) one of its own, which a replacement under a new name does not inherit."""
        return self.data_dir if self.bucket is None else self._disks / name

    def env(self, **overrides: str) -> dict[str, str]:
        storage = (
            {} if self.bucket is None else {"STORAGE_URL": self.bucket.url, **self.bucket.env()}
        )
        return environment(
            **{
                "DATABASE_URL": self.url,
                "DATA_DIR": str(self.data_dir),
                **storage,
                **TIMINGS,
                **overrides,
            }
        )

    def _spawn(self, name: str, argv: list[str], **env: str) -> Service:
        port = free_port()
        service = Service(
            name,
            argv,
            self.env(DATA_DIR=str(self.data_dir_of(name)), METRICS_PORT=str(port), **env),
            self._logs / f"{name}.log",
            metrics_port=port,
        )
        self.services.append(service)
        return service

    def start_workers(
        self,
        *names: str,
        database_url: str | None = None,
        stop_after_store: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> list[Service]:
        """Start them all, then wait until each consumes (they start up in parallel). With
        `stop_after_store`, they run tests/faults/worker_process.py instead of `clipper
        worker`."""
        extra = dict(env or {})
        if database_url is not None:
            extra["DATABASE_URL"] = database_url
        argv = [*CLIPPER, "worker"]
        if stop_after_store:
            argv = [sys.executable, "-m", "tests.faults.worker_process"]
            extra["FAULT_STOP_AFTER_STORE"] = "1"
        workers = [self._spawn(name, argv, **extra) for name in names]
        for worker in workers:
            worker.wait_for_output(_is_consuming, timeout=STARTUP_TIMEOUT, what="consuming")
        return workers

    # --- the API ------------------------------------------------------------------------

    def upload(self, source: Path) -> str:
        with source.open("rb") as file:
            response = self.http.post("/api/uploads", files={"file": (source.name, file)})
        assert response.status_code == 201, response.text
        return str(response.json()["uploadKey"])

    def submit(
        self, count: int, clip: Clip = SHORT, *, upload_key: str | None = None, retry_for: float = 0
    ) -> list[str]:
        """POST `count` jobs; every 202 is recorded as accepted. With `retry_for`, a refusal
        (503, or no answer: the database or the API is recovering) is retried that long."""
        body = clip.body(upload_key or self.upload_key)
        ids = [self._post_job(body, retry_for) for _ in range(count)]
        self.accepted += ids
        return ids

    def _post_job(self, body: dict[str, str], retry_for: float) -> str:
        refusals: list[str] = []

        def accepted() -> str | None:
            try:
                response = self.http.post("/api/jobs", json=body)
            except httpx.TransportError as exc:
                refusals.append(f"{type(exc).__name__}: {exc}")
                return None
            if response.status_code == 202:
                return str(response.json()["id"])
            refusals.append(f"{response.status_code}: {response.text}")
            return None

        try:
            return poll(accepted, timeout=retry_for, message="POST /api/jobs accepted")
        except AssertionError:
            raise AssertionError(f"POST /api/jobs was refused: {refusals[-1]}") from None

    # --- the database -------------------------------------------------------------------

    def jobs(self) -> dict[str, JobRow]:
        return invariant.jobs(self.url)

    def statuses(self, ids: Collection[str]) -> dict[str, str]:
        rows = self.jobs()
        return {job: rows[job].status for job in ids if job in rows}

    def wait_finished(self, ids: Collection[str], *, timeout: float, what: str) -> None:
        """Until every one of `ids` is done or failed."""

        def finished() -> bool:
            statuses = self.statuses(ids)
            return len(statuses) == len(ids) and all(
                status in ("done", "failed") for status in statuses.values()
            )

        poll(finished, timeout=timeout, message=what)

    def status_counts(self) -> Counter[str]:
        return Counter(row.status for row in self.jobs().values())

    def events(self, job: str) -> list[tuple[str, dict[str, Any]]]:
        rows = invariant.query(
            self.url,
            "SELECT type, payload FROM job_events WHERE job_id = %(job)s ORDER BY id",
            {"job": job},
        )
        return [(kind, payload) for kind, payload in rows]

    def attempts_started(self, job: str) -> list[int]:
        """The attempt numbers of the job's `processing` events, in order."""
        return [int(p["attempt"]) for kind, p in self.events(job) if kind == "processing"]

    def violations(self) -> list[str]:
        return invariant.violations(self.url, self.clips, self.accepted)

    def quiet(
        self, *faults: Fault, hit: Collection[str] = (), timeout: float = QUIET_TIMEOUT
    ) -> None:
        """Wait until nothing is left to do, and report the recovery from each fault."""
        quiet_at = invariant.wait_quiet(self.url, timeout)
        for fault in faults:
            invariant.report_recovery(self.url, fault, quiet_at, hit)
        print(f"[quiet] {len(self.accepted)} accepted: {invariant.summary(self.jobs().values())}")

    def check(self) -> dict[str, JobRow]:
        """The invariant must hold (once quiet): the job rows."""
        return invariant.assert_holds(self.url, self.clips, self.accepted)

    def settle(
        self, *faults: Fault, hit: Collection[str] = (), timeout: float = QUIET_TIMEOUT
    ) -> dict[str, JobRow]:
        """quiet(), then check()."""
        self.quiet(*faults, hit=hit, timeout=timeout)
        return self.check()

    # --- the disks ----------------------------------------------------------------------

    def files_on_disk(self, name: str) -> list[str]:
        """Every file under the DATA_DIR of the process called `name`, relative to it (empty
        folders are not files: a process may make its folders up front)."""
        root = self.data_dir_of(name)
        return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())

    # --- teardown -----------------------------------------------------------------------

    def tails(self, lines: int = 25) -> str:
        return "\n\n".join(
            f"--- {s.name} (pid {s.pid}, {s.log_path}) ---\n{s.tail(lines)}" for s in self.services
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        for service in self.services:
            service.close()
