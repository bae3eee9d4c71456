"""Faults between Clipper and PostgreSQL: the cluster crash-restarted under load, every backend
terminated mid-run, and a worker behind a half-open (black-holed) connection. Each scenario
ends with the invariant (tests/faults/invariant.py)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults.deployment import LONG, VISIBILITY_SEC, Deployment
from tests.faults.invariant import Fault, inject, query
from tests.faults.processes import ProcInfo, Service
from tests.faults.waiting import holds_within, poll
from tests.proxy import BlackholeProxy, tcp_url

# What a worker needs to notice a dead path by itself (being added to the settings: harmless
# where a setting does not exist yet).
DEADLINES = {
    "DB_CONNECT_TIMEOUT_SEC": "2",
    "DB_STATEMENT_TIMEOUT_SEC": "1.5",
    "DB_LOCK_TIMEOUT_SEC": "1",
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC": "3",
}


def _under_way(deployment: Deployment, done_at_least: int) -> bool:
    """Some jobs done, and some being cut right now."""
    counts = deployment.status_counts()
    return counts["done"] >= done_at_least and counts["processing"] >= 1


def _wait_under_way(deployment: Deployment, done_at_least: int) -> None:
    poll(
        lambda: _under_way(deployment, done_at_least),
        timeout=60,
        message=f"at least {done_at_least} job(s) done and one processing",
    )


def _all_running(services: list[Service]) -> None:
    exited = {s.name: s.process.returncode for s in services if not s.running()}
    assert not exited, f"processes died instead of reconnecting: {exited}"


@pytest.mark.fault
def test_postgres_crash_restarted_under_load_loses_no_job_and_runs_none_twice(
    deployment: Deployment,
) -> None:
    deployment.start_workers("w1", "w2")
    deployment.submit(20)
    _wait_under_way(deployment, done_at_least=3)
    fault = inject("crash-restart of PostgreSQL")
    deployment.cluster.crash_restart()
    deployment.submit(5, retry_for=30)  # the API reconnects by itself
    deployment.settle(fault)
    _all_running(deployment.services)


def _terminate_clipper_backends(url: str) -> list[str]:
    """pg_terminate_backend on every Clipper session (the test's own are named otherwise);
    the application names of those terminated."""
    rows = query(
        url,
        "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE %(clipper)s AND pid <> pg_backend_pid()",
        {"clipper": "clipper%"},
    )
    return sorted(name for name, terminated in rows if terminated)


@pytest.mark.fault
def test_every_backend_terminated_twice_mid_run_loses_no_job_and_runs_none_twice(
    deployment: Deployment,
) -> None:
    workers = deployment.start_workers("w1", "w2")
    deployment.submit(24)
    faults: list[Fault] = []
    for round_ in (1, 2):
        _wait_under_way(deployment, done_at_least=4 * round_)
        faults.append(inject(f"pg_terminate_backend of every Clipper backend, round {round_}"))
        killed = _terminate_clipper_backends(deployment.url)
        print(f"[fault] round {round_}: terminated {len(killed)} backends: {killed}")
        # Each worker holds several (pools, held lanes, the listener) and the API some more.
        assert len(killed) >= 2 * len(workers) + 1, killed
    deployment.settle(*faults)
    _all_running(deployment.services)


def _metrics_problem(worker: Service) -> str | None:
    started = time.monotonic()
    try:
        worker.scrape(timeout=5)
    except httpx.HTTPError as exc:
        return (
            f"w1's /metrics did not answer within 5 s while black-holed "
            f"({type(exc).__name__} after {time.monotonic() - started:.1f}s)"
        )
    return None


def _ffmpeg_problem(cutting: list[ProcInfo], fault: Fault) -> str | None:
    """W1's FFmpeg must stop once its leases are surely gone: one visibility window after the
    black hole, plus a few seconds."""
    deadline = VISIBILITY_SEC + 4
    if holds_within(
        lambda: not any(process.alive() for process in cutting),
        timeout=max(0.0, deadline - fault.elapsed()),
    ):
        print(f"[recovery] w1's FFmpeg gone {fault.elapsed():.1f}s after the black hole")
        return None
    left = [p.pid for p in cutting if p.alive()]
    return f"w1's FFmpeg {left} still cutting {fault.elapsed():.1f}s after the black hole"


def _reconnect_problem(
    deployment: Deployment, proxy: BlackholeProxy, others: list[Service]
) -> str | None:
    """With the other workers stopped, jobs submitted after heal() can only be done by w1."""
    for worker in others:
        assert worker.terminate() == 0, worker.tail()
    proxy.heal()
    healed = inject("heal() of the black hole")
    later = deployment.submit(4)
    if holds_within(
        lambda: "done" in deployment.statuses(later).values(), timeout=VISIBILITY_SEC + 16
    ):
        print(f"[recovery] w1 did a job again {healed.elapsed():.1f}s after heal()")
        return None
    deployment.start_workers("w3")  # so the backlog drains and the invariant can be checked
    return "w1 did none of the jobs submitted after heal(): it never reconnected"


@pytest.mark.fault
@pytest.mark.timeout(240)
def test_a_worker_behind_a_half_open_connection_lets_go_of_its_jobs_and_comes_back(
    deployment: Deployment, proxy: BlackholeProxy, long_source: Path
) -> None:
    [cut_off] = deployment.start_workers(
        "w1", database_url=tcp_url(deployment.url, proxy.port), env=DEADLINES
    )
    assert proxy.connections > 0  # w1 does reach PostgreSQL through the proxy
    # w1 alone, so it takes both long jobs: they outlast a lease, so they are mid-cut when
    # the path goes dead and would still be cutting long after.
    long_jobs = deployment.submit(2, LONG, upload_key=deployment.upload(long_source))
    poll(lambda: cut_off.cutting() == set(long_jobs), timeout=30, message="w1 cutting both")
    cutting = cut_off.ffmpeg()
    cut_off.scrape()  # as a Prometheus server would have: the scrape's connection is open
    fault = inject("a black hole between a worker and PostgreSQL")
    proxy.blackhole()
    others = deployment.start_workers("w2")
    short_jobs = deployment.submit(8)

    # Collected, so that one run reports every way w1 misbehaves.
    problems = [
        _ffmpeg_problem(cutting, fault),
        _metrics_problem(cut_off),
    ]
    deployment.wait_finished(
        [*long_jobs, *short_jobs], timeout=120, what="w2 finishing w1's jobs and the rest"
    )
    taken_over = {job: deployment.attempts_started(job) for job in long_jobs}
    assert all(max(a) >= 2 for a in taken_over.values()), f"not taken over: {taken_over}"
    problems.append(_reconnect_problem(deployment, proxy, others))
    deployment.quiet(fault, hit=long_jobs)
    found = [problem for problem in problems if problem] + deployment.violations()
    assert not found, "\n".join(found)
