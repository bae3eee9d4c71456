"""Groups: fair turns among groups within priority order, and a per-group cap on active
messages that holds across worker processes. On real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from clipper.queue import (
    ErrorInfo,
    JobContext,
    PermanentError,
    QueueAdapter,
    QueueMessage,
    ReceivedMessage,
)
from tests.helpers import wait_for
from tests.queue.conftest import Harness
from tests.queue.processes import sigterm, start_worker
from tests.queue.test_contract import Recorder

CONCURRENCY = 4


async def _claim_until(
    adapter: QueueAdapter, wanted: set[uuid.UUID], *, limit: int, most: int
) -> int:
    """Claim batches of `limit` (acknowledging each) until every job of `wanted` was claimed;
    the number of claims it took, failing after `most`."""
    store = adapter.store
    for claims in range(1, most + 1):
        batch = await store.claim("clips", limit, 30.0)
        wanted -= {message.job_id for message in batch}
        await store.complete([message.claim for message in batch])
        if not wanted:
            return claims
    raise AssertionError(f"{len(wanted)} message(s) still unclaimed after {most} claims")


@pytest.mark.parametrize("bulk", [False, True], ids=["publish", "publish_many"])
async def test_a_small_group_is_not_stuck_behind_a_large_backlog(
    harness: Harness, bulk: bool
) -> None:
    adapter = await harness.adapter()
    backlog = [QueueMessage(uuid.uuid4(), group="a") for _ in range(1000)]
    await adapter.publish_many(backlog)
    # A few of A's messages are claimed before B arrives, as in a running system.
    await _claim_until(adapter, {backlog[0].job_id}, limit=CONCURRENCY, most=1)
    newcomers = [QueueMessage(uuid.uuid4(), group="b") for _ in range(10)]
    if bulk:
        await adapter.publish_many(newcomers)
    else:
        for message in newcomers:
            await adapter.publish(message)
    groups = 2
    claims = await _claim_until(
        adapter,
        {message.job_id for message in newcomers},
        limit=CONCURRENCY,
        most=2 * groups * CONCURRENCY,
    )
    # Alternating turns: B's 10 come with about 10 of A's, in about 20 / 4 claims (FIFO
    # across the queue would take 250).
    assert claims <= 6


async def test_groups_alternate_within_a_priority_and_priority_comes_first(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    order = [
        QueueMessage(uuid.uuid4(), priority=1, group="a"),
        QueueMessage(uuid.uuid4(), priority=1, group="a"),
        QueueMessage(uuid.uuid4(), priority=1, group="a"),
        QueueMessage(uuid.uuid4(), priority=1, group="b"),
        QueueMessage(uuid.uuid4(), priority=1, group="b"),
        QueueMessage(uuid.uuid4(), priority=0, group="c"),
        QueueMessage(uuid.uuid4(), priority=1),  # ungrouped: first within its priority
    ]
    for message in order:
        await adapter.publish(message)
    claimed = await adapter.store.claim("clips", 10, 30.0)
    seen = [(message.priority, message.group) for message in claimed]
    assert seen == [
        (0, "c"),
        (1, None),
        (1, "a"),
        (1, "b"),
        (1, "a"),
        (1, "b"),
        (1, "a"),
    ]


async def test_a_batch_takes_turns_in_batch_order_and_keeps_its_groups(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    batch = [
        QueueMessage(uuid.uuid4(), group=group, payload={"n": n})
        for n, group in enumerate(["x", "x", "y", None, "x", "y"])
    ]
    duplicate = QueueMessage(batch[0].job_id, group="x")
    new = await adapter.publish_many([*batch, duplicate])
    assert new == [message.job_id for message in batch]
    claimed = await adapter.store.claim("clips", 10, 30.0)
    assert [message.payload for message in claimed] == [
        {"n": 3},  # ungrouped
        {"n": 0},  # x's first turn
        {"n": 2},  # y's first turn
        {"n": 1},
        {"n": 5},
        {"n": 4},
    ]
    assert [message.group for message in claimed] == [None, "x", "y", "x", "y", "x"]


async def test_a_group_that_was_idle_does_not_bank_turns(harness: Harness) -> None:
    """A group whose last turn is far behind the queue's oldest waiting turn starts there,
    not at its old turn (which would let it run a whole burst before anyone else)."""
    adapter = await harness.adapter()
    await adapter.publish(QueueMessage(uuid.uuid4(), group="quiet"))
    await _claim_until(adapter, set(), limit=1, most=1)
    busy = [QueueMessage(uuid.uuid4(), group="busy") for _ in range(50)]
    await adapter.publish_many(busy)
    await _claim_until(adapter, {busy[29].job_id}, limit=10, most=3)  # 30 of busy's run
    burst = [QueueMessage(uuid.uuid4(), group="quiet") for _ in range(5)]
    await adapter.publish_many(burst)
    claimed = await adapter.store.claim("clips", 4, 30.0)
    assert [message.group for message in claimed] == ["busy", "quiet", "busy", "quiet"]


async def test_a_group_cap_holds_within_one_claim_and_frees_with_settles(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    await adapter.publish_many(
        [QueueMessage(uuid.uuid4(), group="a") for _ in range(5)]
        + [QueueMessage(uuid.uuid4(), group="b") for _ in range(5)]
        + [QueueMessage(uuid.uuid4()) for _ in range(3)]
    )
    store = adapter.store
    first = await store.claim("clips", 10, 30.0, group_cap=2)
    assert sorted(str(message.group) for message in first) == sorted(
        ["None"] * 3 + ["a", "a", "b", "b"]
    )
    assert await store.claim("clips", 10, 30.0, group_cap=2) == []  # both groups are full
    done = next(message for message in first if message.group == "a")
    await store.complete([done.claim])
    again = await store.claim("clips", 10, 30.0, group_cap=2)
    assert [message.group for message in again] == ["a"]  # one place freed, one taken


async def test_concurrent_capped_claims_never_exceed_the_cap(harness: Harness) -> None:
    adapters = [await harness.adapter() for _ in range(4)]
    await adapters[0].publish_many([QueueMessage(uuid.uuid4(), group="g") for _ in range(40)])
    batches = await asyncio.gather(
        *(adapter.store.claim("clips", 8, 30.0, group_cap=3) for adapter in adapters)
    )
    assert sum(len(batch) for batch in batches) == 3


async def test_with_a_cap_of_2_three_worker_processes_never_run_more_than_2_per_group(
    harness: Harness, db_url: str
) -> None:
    adapter = await harness.adapter()
    groups = ["t1", "t2", "t3"]
    workers = [start_worker(db_url, "work", concurrency=4, group_cap=2) for _ in range(3)]
    jobs = [QueueMessage(uuid.uuid4(), group=groups[n % 3]) for n in range(300)]
    await adapter.publish_many(jobs)
    highest: dict[str, int] = dict.fromkeys(groups, 0)

    async def sample_until_done() -> bool:
        rows = await harness._sql(
            "SELECT group_key, count(*) FILTER (WHERE state = 'active'),"
            " count(*) FILTER (WHERE state <> 'completed')"
            " FROM {schema}.messages GROUP BY group_key"
        )
        for group, active, _ in rows:
            highest[group] = max(highest[group], active)
        return all(unfinished == 0 for _, _, unfinished in rows)

    try:
        await wait_for(sample_until_done, timeout=90, interval=0.002, message="300 completed")
    finally:
        codes = [sigterm(worker) for worker in workers]
    assert codes == [0, 0, 0]
    assert max(highest.values()) <= 2, highest
    assert max(highest.values()) == 2  # the cap was reached, so it was what held them back


async def test_dead_letters_and_redrive_keep_the_group(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job, group="tenant-7"))

    async def refuse(message: ReceivedMessage, context: JobContext) -> None:
        raise PermanentError("no")

    consumer = adapter.consume(refuse)
    await wait_for(lambda: _is_failed(harness, job), message="dead-lettered")
    await consumer.stop()
    [entry] = await adapter.list_dead_letters()
    assert entry.letter.group == "tenant-7"
    await harness.age_finished(1000)
    await adapter.run_retention()  # the source row is gone: redrive re-creates it
    assert await adapter.redrive() == [job]
    [message] = await adapter.store.claim("clips", 1, 30.0)
    assert (message.job_id, message.group) == (job, "tenant-7")
    assert isinstance(entry.letter.error, ErrorInfo)


async def _is_failed(harness: Harness, job: uuid.UUID) -> bool:
    return await harness.state(job) == ("failed", 1)


def test_a_group_key_is_1_to_200_characters() -> None:
    with pytest.raises(ValueError, match="group"):
        QueueMessage(uuid.uuid4(), group="")
    with pytest.raises(ValueError, match="group"):
        QueueMessage(uuid.uuid4(), group="x" * 201)


async def test_a_capped_consumer_waits_quietly_and_wakes_when_another_frees_a_place(
    harness: Harness,
) -> None:
    """A full group's due messages must not make the claim loop spin (their run_after is
    past, so "the next due message" is always now); the acknowledgement that frees a place,
    from another process, wakes it instead of the next poll."""
    other_process = await harness.adapter()
    waiter = await harness.adapter(poll_interval_seconds=30.0)
    await other_process.publish_many([QueueMessage(uuid.uuid4(), group="g") for _ in range(2)])
    [running] = await other_process.store.claim("clips", 1, 30.0, group_cap=1)
    idle_checks = 0
    real_next_due = waiter.store.next_due

    async def counted_next_due(queue: str) -> float | None:
        nonlocal idle_checks
        idle_checks += 1
        return await real_next_due(queue)

    waiter.store.next_due = counted_next_due  # type: ignore[method-assign]
    recorder = Recorder()
    waiter.consume(recorder, group_concurrency=1)
    await wait_for(lambda: idle_checks >= 1, message="the waiter gone idle")
    with pytest.raises(AssertionError, match="timed out"):  # quiet while the group is full
        await wait_for(lambda: idle_checks > 2, timeout=0.5)
    assert recorder.seen == []
    await other_process.store.complete([running.claim])  # frees the group's one place
    async with asyncio.timeout(3.0):  # far sooner than the waiter's 30 s poll
        await wait_for(lambda: recorder.seen, message="the waiter woken")
