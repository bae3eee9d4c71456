"""The API's own Prometheus instruments (the queue's live on the queue adapter's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "clipper_http_requests",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "clipper_http_request_duration_seconds",
            "HTTP request time.",
            ["method", "route"],
            registry=registry,
        )


class JobGauges:
    """Set from the database at each scrape of /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge("clipper_jobs", "Jobs by status.", ["status"], registry=registry)
        self.dead = Gauge("clipper_dlq_jobs", "Jobs with a dead-letter record.", registry=registry)
        self.oldest = Gauge(
            "clipper_oldest_queued_job_age_seconds",
            "Age of the oldest queued job.",
            registry=registry,
        )


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry)
        self.gauges = JobGauges(self.registry)
