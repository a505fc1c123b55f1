"""Prometheus metrics of one API app (its own registry: several apps may share a process).

``ApiMetrics.middleware`` counts every HTTP request by route template, method and status and
observes its latency; ``/metrics`` refreshes the queue gauges before it renders.

Several API processes (``orchestrator_api_processes``, api/processes.py) answer on one port,
so a scrape reaches one of them at random: the counters and the histogram must be the sum
over all of them. prometheus-client's multiprocess mode does that: when
``PROMETHEUS_MULTIPROC_DIR`` is set (the unit points it at its RuntimeDirectory; the
supervisor empties it at start), every process writes its counters to memory-mapped files
there and :meth:`ApiMetrics.render` sums the files of every process, live or gone (a
counter of a process restarted by a reload is kept, so totals never go back). prometheus-
client reads that variable itself when it is imported; the app gets the same value from
Settings.api_metrics_dir.
The queue gauges are not per process (every process reads the same Redis): a collector
that yields the values of the last refresh, never written to the files. The repository
indexing counters are not per process either: read from PostgreSQL at each scrape
(services/index_metrics.py), the same whichever process answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shield_orchestrator.services.index_metrics import IndexCounters

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# name -> help of the gauges refreshed from Redis at each scrape (and by /health/detailed)
QUEUE_GAUGES = {
    "shield_queue_depth": "Entries on the workspaces' ingestion streams.",
    "shield_queue_pending": "Entries delivered to a worker and not acknowledged yet.",
    "shield_dead_letter_depth": "Entries on the dead-letter stream.",
    "shield_queue_stale_pending_seconds": (
        "Longest idle time of a consumer that holds pending entries (no live worker "
        "reclaims them when it exceeds the reclaim idle)."
    ),
    "shield_jobs_dirty": "Jobs whose PostgreSQL row is behind Redis (the write-behind backlog).",
    "shield_workers_live": "Worker processes whose heartbeat is current.",
    "shield_workspaces_unserved": (
        "Declared workspaces whose chunks wait while no worker process serves them."
    ),
}


class QueueGauges(Collector):
    """The queue gauges as of their last refresh (0 before the first), this process's own."""

    def __init__(self) -> None:
        self.values = dict.fromkeys(QUEUE_GAUGES, 0.0)

    def set(self, name: str, value: float) -> None:
        if name not in self.values:
            raise KeyError(name)
        self.values[name] = float(value)

    def collect(self) -> Iterator[Metric]:
        for name, doc in QUEUE_GAUGES.items():
            yield GaugeMetricFamily(name, doc, value=self.values[name])


class ApiMetrics:
    """The API's collectors; ``multiprocess_dir``: PROMETHEUS_MULTIPROC_DIR, when it is set."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shield_api_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "shield_api_request_duration_seconds",
            "HTTP request latency by route template and method (SSE: the stream's life).",
            ("route", "method"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.chunks_accepted = Counter(
            "shield_api_chunks_accepted",
            "Chunks put on the ingestion stream.",
            registry=self.registry,
        )
        self.gauges = QueueGauges()
        self.registry.register(self.gauges)
        self.index = IndexCounters()
        self.registry.register(self.index)
        self.multiprocess_dir = multiprocess_dir

    def render(self) -> bytes:
        """The exposition text: this app's registry, or, in multiprocess mode, the sum over
        every API process's files plus the queue gauges and the indexing counters."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(self.gauges)
        registry.register(self.index)
        return generate_latest(registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A pure ASGI middleware around ``app`` that records every HTTP request."""

        async def record(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "<unmatched>"
                method = scope.get("method", "")
                self.requests.labels(template, method, str(status)).inc()
                self.latency.labels(template, method).observe(time.perf_counter() - started)

        return record
