"""Prometheus collectors of a worker process, and a small loopback /metrics server.

Each WorkerPool owns a registry (several pools can live in one test process); the server is
an asyncio one, so it stops with the pool (no thread left behind).
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    """The collectors the pool updates (names prefixed ``shield_worker_``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.processed = Counter(
            "shield_worker_chunks_processed", "Chunks processed successfully", registry=r
        )
        self.failed = Counter(
            "shield_worker_chunks_failed", "Chunks that failed for good", ["reason"], registry=r
        )
        self.retried = Counter("shield_worker_chunks_retried", "Chunk retries", registry=r)
        self.dead_lettered = Counter(
            "shield_worker_chunks_dead_lettered",
            "Entries sent to the dead-letter stream",
            registry=r,
        )
        self.duplicates = Counter(
            "shield_worker_chunks_duplicate", "Redeliveries already counted", registry=r
        )
        self.reclaimed = Counter(
            "shield_worker_entries_reclaimed", "Entries taken from idle consumers", registry=r
        )
        self.overloaded = Counter(
            "shield_worker_engine_overloaded", "Engine overload back-offs", registry=r
        )
        self.duration = Histogram(
            "shield_worker_chunk_duration_seconds",
            "Time to process one chunk (all tries)",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("shield_worker_in_flight", "Chunks in flight", registry=r)
        self.pending = Gauge(
            "shield_worker_group_pending", "Entries pending in the consumer group", registry=r
        )
        self.lag = Gauge(
            "shield_worker_group_lag", "Entries not yet delivered to the group", registry=r
        )
        self.rate = Gauge("shield_worker_rate", "Chunks per second (sliding window)", registry=r)
        self.task_restarts = Counter(
            "shield_worker_task_restarts", "Background task crashes", ["task"], registry=r
        )
        self.reclaim_idle = Gauge(
            "shield_worker_reclaim_idle_seconds",
            "Pending entries idle this long are reclaimed (the pool's reclaim_idle_ms)",
            registry=r,
        )
        self.flush_failures = Counter(
            "shield_worker_flush_failures",
            "Write-behind flushes that failed (PostgreSQL or Redis unreachable)",
            registry=r,
        )
        self.flush_last_success = Gauge(
            "shield_worker_flush_last_success_timestamp_seconds",
            "Unix time of this process's last write-behind flush that succeeded",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """GET /metrics on host:port (any other path: 404). ``port`` 0 picks a free port."""

    def __init__(self, metrics: WorkerMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.split()
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] == b"/metrics":
                body, status, ctype = self.metrics.render(), "200 OK", CONTENT_TYPE_LATEST
            else:
                body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
