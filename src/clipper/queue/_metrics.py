"""Prometheus instruments of the queue, on a registry per adapter (two adapters in one process
never collide); queue depth comes from a reader called at each scrape (which must not block)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ._message import QueueDepth

logger = logging.getLogger("clipper.queue")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DURATION_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class QueueMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter(name, text, ["queue", *labels], registry=self.registry)

        self.published = counter("clipper_queue_published", "Messages enqueued.")
        self.duplicates = counter(
            "clipper_queue_duplicate_publishes", "Publishes ignored: the job id was queued."
        )
        self.claimed = counter("clipper_queue_claimed", "Attempts started (messages claimed).")
        self.completed = counter("clipper_queue_completed", "Attempts acknowledged.")
        self.retried = counter("clipper_queue_retried", "Failed attempts scheduled to retry.")
        self.failed = counter("clipper_queue_failed", "Attempts that failed (any reason).")
        self.dead_lettered = counter(
            "clipper_queue_dead_lettered", "Messages moved to the dead-letter queue."
        )
        self.lease_lost = counter(
            "clipper_queue_lease_lost", "Settle or extend calls refused: the lease was lost."
        )
        self.cancelled = counter(
            "clipper_queue_cancelled", "Messages ended cancelled (waiting or running)."
        )
        self.released = counter(
            "clipper_queue_released", "Attempts given back at shutdown (attempt not counted)."
        )
        self.systemic_failures = counter(
            "clipper_queue_systemic_failures",
            "Attempts given back uncharged for a systemic cause (claims paused).",
            "code",
        )
        self.engine_errors = counter(
            "clipper_queue_engine_errors",
            "Errors of the engine itself (database, listener).",
            "operation",
        )
        self.handler_seconds = Histogram(
            "clipper_queue_handler_duration_seconds",
            "Handler run time per attempt.",
            ["queue", "outcome"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.pickup_seconds = Histogram(
            "clipper_queue_pickup_latency_seconds",
            "From runnable to claimed, on the database clock.",
            ["queue"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch_depth(self, read_depth: Callable[[], list[QueueDepth]]) -> None:
        """Export queue depth and oldest-ready age, read by `read_depth` at each scrape."""
        self.registry.register(_DepthCollector(read_depth))


class _DepthCollector(Collector):
    def __init__(self, read_depth: Callable[[], list[QueueDepth]]) -> None:
        self._read_depth = read_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "clipper_queue_depth", "Unfinished messages by state.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "clipper_queue_oldest_ready_age_seconds",
            "Age of the oldest message waiting to run.",
            labels=["queue"],
        )
        up = GaugeMetricFamily(
            "clipper_queue_depth_scrape_ok", "1 when the depth could be read from the store."
        )
        try:
            rows = self._read_depth()
        except Exception as exc:
            logger.warning("queue depth could not be read for metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        for row in rows:
            depth.add_metric([row.queue, "ready"], row.ready)
            depth.add_metric([row.queue, "scheduled"], row.scheduled)
            depth.add_metric([row.queue, "active"], row.active)
            oldest.add_metric([row.queue], row.oldest_ready_age_seconds)
        up.add_metric([], 1)
        yield from (depth, oldest, up)
