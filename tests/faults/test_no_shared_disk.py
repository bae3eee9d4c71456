"""Workers that share no disk: the API and the workers run as separate processes, each with a
DATA_DIR (and scratch folder) of its own, sharing only PostgreSQL and the object store, as on
separate machines. A worker SIGKILLed mid-cut and replaced (on a new disk) must lose no job
and run none twice; and no process may keep a source or a clip on its own disk, for then a
job would depend on the machine it ran on."""

from __future__ import annotations

import pytest

from tests.faults.deployment import Clip, Deployment
from tests.faults.invariant import inject
from tests.faults.processes import Service
from tests.faults.waiting import poll

JOBS = 100
# Re-encoded (it starts between keyframes), so FFmpeg runs long enough to be seen mid-cut,
# and short, so that 100 of them fit in well under a minute on two cores.
QUICK = Clip("00:00:01.500", "00:00:03.500")


def _done_by(workers: list[Service]) -> dict[str, set[str]]:
    """Each job id, and the workers that logged its `job done` (from their JSON logs: the
    database records no worker)."""
    finishers: dict[str, set[str]] = {}
    for worker in workers:
        for record in worker.log_records():
            if record.get("message") == "job done" and "job_id" in record:
                finishers.setdefault(str(record["job_id"]), set()).add(worker.name)
    return finishers


@pytest.mark.fault
def test_workers_sharing_only_the_database_and_the_store_survive_a_sigkill(
    deployment_on_s3: Deployment,
) -> None:
    deployment = deployment_on_s3
    victim, survivor = deployment.start_workers("w1", "w2")
    deployment.submit(JOBS, QUICK)
    hit = poll(victim.cutting, timeout=30, message="w1 cutting")
    fault = inject("SIGKILL of a worker with a disk of its own")
    victim.kill()
    [replacement] = deployment.start_workers("w3")
    rows = deployment.settle(fault, hit=hit)

    # Every job done exactly once (settle checked the `done` events and each clip in the store).
    assert len(rows) == JOBS
    assert {row.status for row in rows.values()} == {"done"}
    for job, row in rows.items():
        assert deployment.attempts_started(job) == list(range(1, row.attempts + 1)), job

    # The killed worker's jobs were taken over: redelivered, and finished by another worker.
    finishers = _done_by([victim, survivor, replacement])
    taken_over = {job: (rows[job].attempts, finishers.get(job)) for job in hit}
    assert all(attempts >= 2 and by and "w1" not in by for attempts, by in taken_over.values()), (
        f"the killed worker's jobs (attempts, finished by): {taken_over}"
    )

    # Nothing on any process's own disk but the killed worker's scratch: no upload kept by the
    # API, no source or clip left (or kept) by a worker. Each worker did cut on its own disk
    # (its scratch folder is there), so the emptiness below is not that of an unused folder.
    workers = (victim, survivor, replacement)
    assert all((deployment.data_dir_of(w.name) / "scratch").is_dir() for w in workers)
    left = {service.name: deployment.files_on_disk(service.name) for service in deployment.services}
    outside = [path for path in left.pop(victim.name) if not path.startswith("scratch/")]
    assert outside == [], f"w1 kept files outside its scratch folder: {outside}"
    assert all(files == [] for files in left.values()), f"files on the disks: {left}"
