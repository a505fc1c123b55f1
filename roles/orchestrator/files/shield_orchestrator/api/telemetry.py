"""Prometheus metrics of one API app (its own registry: several apps may share a process).

``ApiMetrics.middleware`` counts every HTTP request by route template, method and status and
observes its latency; ``/metrics`` refreshes the queue gauges before it renders.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
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
        self.queue_depth = Gauge(
            "shield_queue_depth", "Entries on the ingestion stream.", registry=self.registry
        )
        self.pending = Gauge(
            "shield_queue_pending",
            "Entries delivered to a worker and not acknowledged yet.",
            registry=self.registry,
        )
        self.dead_letter = Gauge(
            "shield_dead_letter_depth", "Entries on the dead-letter stream.", registry=self.registry
        )
        self.stale_pending = Gauge(
            "shield_queue_stale_pending_seconds",
            "Longest idle time of a consumer that holds pending entries (no live worker "
            "reclaims them when it exceeds the reclaim idle).",
            registry=self.registry,
        )
        self.jobs_dirty = Gauge(
            "shield_jobs_dirty",
            "Jobs whose PostgreSQL row is behind Redis (the write-behind backlog).",
            registry=self.registry,
        )
        self.workers_live = Gauge(
            "shield_workers_live",
            "Worker processes whose heartbeat is current.",
            registry=self.registry,
        )

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
