"""What the parts of bench.queue_bench share: the engine's configuration, alternating rounds,
a consumer drain, the raw SQL drain reference, and how results and targets are printed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from psycopg import sql

from clipper.queue import JobContext, QueueAdapter, QueueConfig, ReceivedMessage

SCHEMA = "clipper_queue"
PAYLOAD = {"n": 1}


def config(concurrency: int = 4, schema: str = SCHEMA) -> QueueConfig:
    return QueueConfig(queue="clips", schema=schema, concurrency=concurrency, pool_max_size=8)


def unit_text(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.2f} {unit}"


@dataclass(frozen=True)
class Target:
    """One target of the issue "Queue engine v2" next to what this run measured."""

    label: str
    value: float
    bound: float
    at_least: bool
    unit: str

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    @property
    def mark(self) -> str:
        return "✓" if self.met else "✗"

    def goal(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {unit_text(self.bound, self.unit)}"

    def verdict(self) -> str:
        return f"target {self.goal()} {self.mark}"

    def line(self) -> str:
        return (
            f"  {self.mark} {self.label:<46} {unit_text(self.value, self.unit):>10}   {self.goal()}"
        )


@dataclass
class Result:
    name: str
    rate: float
    reference: float | None = None
    target: Target | None = None
    reference_name: str = "raw"

    def line(self) -> str:
        text = f"{self.name:<44} {self.rate:>10,.0f} /s"
        if self.reference:
            ratio = self.rate / self.reference
            text += f"   {self.reference_name} {self.reference:>10,.0f} /s   ratio {ratio:.2f}x"
        if self.target:
            text += f"   {self.target.verdict()}"
        return text


# One round of one contender: it times its own steps (so untimed set-up, such as building the
# round's messages, stays out) and returns the seconds of each, by name.
Round = Callable[[], Awaitable[dict[str, float]]]


async def alternate(contenders: Sequence[Round], rounds: int) -> dict[str, float]:
    """Seconds of each step summed over `rounds` rounds that run every contender once, in turn.
    Back-to-back runs differed by up to 2x on this machine, so interleaving is what makes the
    ratios fair; reversing the order every other round cancels what one contender leaves
    behind for the next (a warmed cache, an autovacuum it triggered)."""
    total: dict[str, float] = {}
    for index in range(rounds):
        for contender in contenders if index % 2 == 0 else list(reversed(contenders)):
            for step, seconds in (await contender()).items():
                total[step] = total.get(step, 0.0) + seconds
    return total


async def drain(
    adapter: QueueAdapter,
    queue: str,
    count: int,
    concurrency: int,
    group_concurrency: int | None = None,
) -> float:
    """Seconds for a fresh consumer to run `count` no-op messages, acknowledgements flushed."""
    done = asyncio.Event()
    handled = 0

    async def noop(message: ReceivedMessage, context: JobContext) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            done.set()

    started = time.perf_counter()
    consumer = adapter.consume(
        noop, queue=queue, concurrency=concurrency, group_concurrency=group_concurrency
    )
    await done.wait()
    await consumer.stop()  # flushes the last acknowledgements
    return time.perf_counter() - started


def raw_claim_sql(schema: str, queue: str) -> sql.Composed:
    """The engine's claim reduced to its core: ready rows, SKIP LOCKED, a new lease."""
    return sql.SQL(
        "WITH c AS (SELECT id FROM {s}.messages WHERE queue = {q} AND state = 'ready' "
        "ORDER BY priority, turn, id LIMIT %s FOR UPDATE SKIP LOCKED) "
        "UPDATE {s}.messages m SET state = 'active', attempts = attempts + 1, "
        "lease_token = gen_random_uuid(), lease_until = now() + interval '90 seconds' "
        "FROM c WHERE m.id = c.id RETURNING m.id, m.lease_token"
    ).format(s=sql.Identifier(schema), q=sql.Literal(queue))


def raw_complete_sql(schema: str) -> sql.Composed:
    return sql.SQL(
        "UPDATE {s}.messages SET state = 'completed', finished_at = now(), lease_token = NULL, "
        "lease_until = NULL WHERE id = ANY(%s)"
    ).format(s=sql.Identifier(schema))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
