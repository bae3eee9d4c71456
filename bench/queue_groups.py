"""(f) Groups: what taking turns and a per-group cap cost next to ungrouped messages, in
alternating rounds on one table. Each round publishes its messages (untimed, with
`publish_many`) and times one fresh consumer draining them; a single `publish` of a grouped
message is timed against an ungrouped one too (it takes its turn in a statement of its own)."""

from __future__ import annotations

import time
import uuid

from clipper.queue import QueueAdapter, QueueMessage

from .queue_common import PAYLOAD, Result, Round, Target, alternate, config, drain

ROUNDS = 4
GROUPS = 20
CONCURRENCY = 16
GROUP_CAP = 4


def drain_round(
    adapter: QueueAdapter, name: str, count: int, group: bool, cap: int | None
) -> Round:
    async def round_() -> dict[str, float]:
        queue = f"groups-{name}-{uuid.uuid4().hex[:6]}"
        messages = [
            QueueMessage(uuid.uuid4(), payload=PAYLOAD, group=f"g{n % GROUPS}" if group else None)
            for n in range(count)
        ]
        for start in range(0, count, 1000):
            await adapter.publish_many(messages[start : start + 1000], queue=queue)
        done = await drain(adapter, queue, count, CONCURRENCY, group_concurrency=cap)
        return {name: done}

    return round_


def publish_round(adapter: QueueAdapter, name: str, count: int, group: bool) -> Round:
    async def round_() -> dict[str, float]:
        messages = [
            QueueMessage(uuid.uuid4(), payload=PAYLOAD, group="g1" if group else None)
            for _ in range(count)
        ]
        started = time.perf_counter()
        for message in messages:
            await adapter.publish(message, queue="groups-publish")
        return {name: time.perf_counter() - started}

    return round_


async def bench_groups(url: str, count: int) -> list[Target]:
    adapter = QueueAdapter(url, config(CONCURRENCY))
    await adapter.start()
    per_round = max(1, count // ROUNDS)
    drains = await alternate(
        [
            drain_round(adapter, "ungrouped", per_round, group=False, cap=None),
            drain_round(adapter, "grouped", per_round, group=True, cap=None),
            drain_round(adapter, "capped", per_round, group=True, cap=GROUP_CAP),
        ],
        ROUNDS,
    )
    publishes = await alternate(
        [
            publish_round(adapter, "ungrouped", per_round // 10, group=False),
            publish_round(adapter, "grouped", per_round // 10, group=True),
        ],
        ROUNDS,
    )
    await adapter.shutdown()
    drained = {name: per_round * ROUNDS / seconds for name, seconds in drains.items()}
    published = {name: per_round // 10 * ROUNDS / seconds for name, seconds in publishes.items()}
    base = drained["ungrouped"]
    lines = [
        Result(f"(f) drain, no groups, concurrency {CONCURRENCY}", base),
        Result(f"(f) drain, {GROUPS} groups taking turns", drained["grouped"], base, None, "ungr."),
        Result(
            f"(f) drain, {GROUPS} groups, cap {GROUP_CAP} each",
            drained["capped"],
            base,
            None,
            "ungr.",
        ),
        Result("(f) publish, grouped", published["grouped"], published["ungrouped"], None, "ungr."),
    ]
    for line in lines:
        print(line.line())
    return []
