"""Faults of the worker and its FFmpeg: a worker killed or frozen mid-job, FFmpeg killed
mid-cut, and a stale worker waking up at the moment of completion. Each scenario ends with
the invariant (tests/faults/invariant.py)."""

from __future__ import annotations

import hashlib

import pytest

from tests.faults.deployment import MAX_ATTEMPTS, VISIBILITY_SEC, Deployment, wait_idle
from tests.faults.invariant import inject
from tests.faults.processes import ProcInfo, Service, sigkill
from tests.faults.waiting import poll


@pytest.mark.fault
def test_a_worker_sigkilled_mid_job_loses_no_job_and_runs_none_twice(
    deployment: Deployment,
) -> None:
    victim, _ = deployment.start_workers("w1", "w2")
    deployment.submit(20)
    cutting = poll(victim.ffmpeg, timeout=30, message="w1 cutting")
    hit = {job for process in cutting if (job := process.job_id)}
    fault = inject("SIGKILL of a worker mid-cut")
    victim.kill()
    # Its FFmpeg must not outlive it: nobody would reap it, and it would cut for nothing.
    poll(
        lambda: not any(process.alive() for process in cutting),
        timeout=5,
        message="the killed worker's FFmpeg processes gone",
    )
    print(f"[recovery] the killed worker's FFmpeg gone {fault.elapsed():.2f}s after the kill")
    deployment.start_workers("w3")  # the replacement
    rows = deployment.settle(fault, hit=hit)
    attempts = {job: rows[job].attempts for job in hit}
    assert all(count >= 2 for count in attempts.values()), f"not redelivered: {attempts}"


@pytest.mark.fault
def test_a_worker_stopped_past_its_lease_then_continued_runs_no_job_twice(
    deployment: Deployment,
) -> None:
    frozen, _ = deployment.start_workers("w1", "w2")
    deployment.submit(12)
    hit = poll(frozen.cutting, timeout=30, message="w1 cutting")
    fault = inject("SIGSTOP of a worker past its lease")
    frozen.pause()
    poll(
        lambda: all(max(deployment.attempts_started(job)) >= 2 for job in hit),
        timeout=VISIBILITY_SEC + 20,
        message="another worker taking over the frozen worker's jobs",
    )
    # Not before its lease ran out: it was last renewed at most one heartbeat (a third of
    # the visibility window) before the stop.
    assert fault.elapsed() >= VISIBILITY_SEC * 2 / 3, fault.elapsed()
    frozen.resume()  # while the new attempts run: the old ones wake up and try to finish
    wait_idle(frozen, timeout=30, what="finishing its stale attempts")
    deployment.settle(fault, hit=hit)
    assert frozen.running()


class FfmpegKiller:
    """Kills FFmpeg mid-cut: on every attempt of the first job it sees (which must fail after
    the last attempt), and on the first attempt only of the next `once` jobs (retried)."""

    def __init__(self, worker: Service, once: int) -> None:
        self._worker = worker
        self._once = once
        self.always: str | None = None
        self.once: set[str] = set()
        self._killed: set[tuple[int, int]] = set()

    def sweep(self) -> None:
        for process in self._worker.ffmpeg():
            job = process.job_id
            if job is not None and (process.pid, process.started) not in self._killed:
                self._maybe_kill(job, process)

    def _maybe_kill(self, job: str, process: ProcInfo) -> None:
        if self.always is None:
            self.always = job
        if job != self.always:
            if job in self.once or len(self.once) >= self._once:
                return  # its retry, or a job left alone
            self.once.add(job)
        sigkill(process)
        self._killed.add((process.pid, process.started))


@pytest.mark.fault
def test_ffmpeg_killed_mid_cut_fails_the_attempt_and_the_job_is_retried(
    deployment: Deployment,
) -> None:
    [worker] = deployment.start_workers("w1")
    deployment.submit(8)
    killer = FfmpegKiller(worker, once=2)
    fault = inject("FFmpeg SIGKILLed mid-cut")

    def doomed_job_failed() -> bool:
        killer.sweep()
        if killer.always is None or len(killer.once) < 2:
            return False
        return deployment.statuses([killer.always]).get(killer.always) == "failed"

    poll(doomed_job_failed, timeout=60, message="FFmpeg killed on every attempt of one job")
    assert killer.always is not None
    rows = deployment.settle(fault, hit={killer.always, *killer.once})
    doomed = rows[killer.always]
    assert (doomed.status, doomed.error_code, doomed.attempts) == (
        "failed",
        "FFMPEG_FAILED",
        MAX_ATTEMPTS,
    )
    for job in killer.once:
        assert (rows[job].status, rows[job].attempts) == ("done", 2), rows[job]
        retries = [p for kind, p in deployment.events(job) if kind == "retry"]
        assert [r["attempt"] for r in retries] == [1], retries
        assert "FfmpegError" in retries[0]["error"], retries
    untouched = set(rows) - {killer.always, *killer.once}
    assert {rows[job].attempts for job in untouched} == {1}


def _clip_digest(deployment: Deployment, key: str | None) -> str | None:
    if key is None:
        return None
    path = deployment.data_dir / key
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _finished_state(deployment: Deployment, job: str) -> dict[str, object]:
    """What the stale worker must not change: the row's result and time, its events, the clip."""
    row = deployment.jobs()[job]
    return {
        "status": row.status,
        "updated_at": row.updated_at,
        "result_video_key": row.result_video_key,
        "result_subtitles_key": row.result_subtitles_key,
        "done_events": row.done_events,
        "clip_sha256": _clip_digest(deployment, row.result_video_key),
    }


@pytest.mark.fault
def test_a_stale_worker_completing_after_a_takeover_changes_nothing(
    deployment: Deployment,
) -> None:
    [stale] = deployment.start_workers("w1", stop_after_store=True, env={"QUEUE_CONCURRENCY": "1"})
    [job] = deployment.submit(1)
    poll(lambda: stale.state() == "T", timeout=30, message="w1 stopped right after storing")
    fault = inject("a worker frozen between storing its clip and completing the job")
    deployment.start_workers("w2")
    deployment.wait_finished([job], timeout=VISIBILITY_SEC + 30, what="w2 taking over")
    assert deployment.attempts_started(job) == [1, 2]
    before = _finished_state(deployment, job)
    assert before["status"] == "done", before
    stale.resume()
    wait_idle(stale, timeout=15, what="trying to finish its stale attempt")
    after = _finished_state(deployment, job)
    deployment.quiet(fault, hit=[job])
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f"the stale attempt changed the finished job (before, after): {changed}"
    deployment.check()
