"""`clipper api` and 30 worker processes, all through one PgBouncer in transaction pooling mode
(20 server connections) in front of a PostgreSQL that allows 40 connections: every job ends
`done` exactly once, and no process, nor the pooler, nor the server, ever saw "too many
clients".

The workers are the real worker service (queue, job runner, webhooks, dead letters,
retention) with a processor that does no media work (tests/pgbouncer/worker_process.py): 30
FFmpeg cuts at once would not fit this machine, and the connections are what is under test.
Without QUEUE_LISTEN_URL they poll: with one direct LISTEN connection each, 30 workers would
need 30 of the 40 connections beside the pooler's 20."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.cli_helpers import CLIPPER, environment
from tests.faults.processes import Service
from tests.helpers import wait_until
from tests.media_files import make_video
from tests.pgbouncer.conftest import MAX_CONNECTIONS, POOL_SIZE, Stack

WORKERS = 30
JOBS = 200
STARTUP_TIMEOUT = 150.0  # 31 Python processes starting at once on two busy cores
DRAIN_TIMEOUT = 90.0
TOO_MANY = "too many clients"


def _consuming(line: str) -> bool:
    return '"message": "consuming \'clips\'' in line or "consuming 'clips'" in line


def _count(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, application_name="pgbouncer-test") as conn:
        return conn.execute(query.encode()).fetchall()


@pytest.mark.timeout(400)
def test_the_api_and_30_workers_share_40_connections_through_pgbouncer(
    stack: Stack, tmp_path: Path
) -> None:
    assert (MAX_CONNECTIONS, POOL_SIZE) == (40, 20)
    source = make_video(tmp_path / "source.mp4", 4)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = environment(
        DATABASE_URL=stack.pooled_url,
        DATABASE_POOLER="transaction",
        DATA_DIR=str(tmp_path / "data"),
        QUEUE_CONCURRENCY="2",
        QUEUE_POOL_SIZE="2",
        QUEUE_POLL_INTERVAL_SEC="1",
        METRICS_PORT="0",
        LOG_LEVEL="INFO",
    )
    # As a deployment does: the role's timeouts are set once (any queue command through the
    # pooler sets them), before the fleet starts. Else the first process to start changes
    # them and ends the others' older sessions, which costs each of them a failed statement.
    applied = subprocess.run(
        [*CLIPPER, "queue", "stats"], env=env, capture_output=True, text=True, timeout=120
    )
    assert applied.returncode == 0, applied.stderr
    services: list[Service] = []
    try:
        started = time.monotonic()
        api = Service("api", [*CLIPPER, "api"], {**env, "API_PORT": "0"}, logs / "api.log")
        services.append(api)
        workers = [
            Service(
                f"worker-{index}",
                [sys.executable, "-m", "tests.pgbouncer.worker_process"],
                env,
                logs / f"worker-{index}.log",
            )
            for index in range(WORKERS)
        ]
        services += workers
        line = api.wait_for_output(
            lambda text: text.startswith("Clipper API on "), timeout=STARTUP_TIMEOUT, what="API"
        )
        for worker in workers:
            worker.wait_for_output(_consuming, timeout=STARTUP_TIMEOUT, what="consuming")
        startup = time.monotonic() - started

        started_submitting = time.monotonic()
        with httpx.Client(base_url=line.split()[3], timeout=30) as http, source.open("rb") as file:
            response = http.post("/api/uploads", files={"file": (source.name, file)})
            assert response.status_code == 201, response.text
            body = {
                "sourceType": "upload",
                "uploadKey": response.json()["uploadKey"],
                "start": "00:00:00.500",
                "end": "00:00:02.000",
            }
            accepted = []
            for _ in range(JOBS):
                response = http.post("/api/jobs", json=body)
                assert response.status_code == 202, response.text
                accepted.append(str(response.json()["id"]))
        submitted = time.monotonic()

        direct = stack.direct_url

        def drained() -> bool:
            [(unfinished,)] = _count(
                direct, "SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'failed')"
            )
            return bool(unfinished == 0)

        wait_until(drained, timeout=DRAIN_TIMEOUT, message=f"{JOBS} jobs finished")
        drain = time.monotonic() - submitted

        statuses = {
            str(status): count
            for status, count in _count(direct, "SELECT status, count(*) FROM jobs GROUP BY status")
        }
        assert statuses == {"done": JOBS}
        # Exactly once: one run of each job, all on their first attempt.
        runs = Counter(
            text.split()[1]
            for worker in workers
            for text in worker.log_text().splitlines()
            if text.startswith("PROCESSED ")
        )
        assert set(runs) == set(accepted)
        assert set(runs.values()) == {1}
        assert _count(
            direct,
            "SELECT count(*) FROM clipper_queue.messages WHERE queue = 'clips' AND "
            "(state <> 'completed' OR attempts <> 1 OR lease_token IS NOT NULL)",
        ) == [(0,)]
        assert _count(direct, "SELECT count(*) FROM dlq_jobs") == [(0,)]

        for service in services:
            assert service.running(), f"{service.name} exited:\n{service.tail()}"
            assert TOO_MANY not in service.log_text(), service.tail()
            assert '"level": "error"' not in service.log_text(), service.tail()
        assert TOO_MANY not in stack.pooler.log_text()
        assert TOO_MANY not in stack.cluster.log_text()
        [pool] = [row for row in stack.pooler.show("POOLS") if row["database"] == "clipper"]
        assert pool["sv_active"] + pool["sv_idle"] + pool["sv_used"] <= POOL_SIZE
        clients = [row for row in stack.pooler.show("CLIENTS") if row["database"] == "clipper"]
        busy = sum(1 for worker in workers if "PROCESSED" in worker.log_text())
        print(
            f"\n{WORKERS} workers + API started in {startup:.1f} s; {JOBS} jobs submitted in "
            f"{submitted - started_submitting:.1f} s, all done {drain:.1f} s later, by {busy} "
            f"workers; {len(clients)} client connections on {POOL_SIZE} server connections"
        )
    finally:
        for service in services:
            service.close()
