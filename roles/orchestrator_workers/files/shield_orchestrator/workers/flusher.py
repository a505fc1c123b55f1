"""The write-behind: job progress and failures from Redis to PostgreSQL, every flush_interval.

``Flusher.run(stopping)`` flushes each interval until ``stopping``; the owner (a standalone
WorkerPool, or the process's WorkspacePools) then calls ``drain()`` for the final flush and
``close()``. The PostgreSQL pool is opened lazily by the first flush (``db_factory``), so a
PostgreSQL outage at start does not stop processing: a failed flush is logged and counted, the
data stays in Redis and the next flush catches up (services/job_tracker.py: flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator import keys
from shield_orchestrator.services.job_tracker import JobTracker
from shield_orchestrator.services.metrics import WorkerMetrics
from shield_orchestrator.services.retry import describe
from shield_orchestrator.workers.supervisor import sleep_or_stop

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)
DRAIN_FLUSHES = 20  # the final flush: at most this many rounds while jobs stay dirty


class Flusher:
    """The write-behind of one process (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        tracker: JobTracker,
        db_factory: Callable[[], Awaitable[Any]] | None,
        metrics: WorkerMetrics,
        interval_s: float,
        close_db: bool = True,
    ) -> None:
        """``db_factory`` opens the PostgreSQL pool (None: no write-behind, tests of Redis-only
        behaviour); ``close_db=False`` leaves that pool open at close (the caller's)."""
        self.redis, self.tracker, self.metrics = redis, tracker, metrics
        self.db_factory, self.close_db = db_factory, close_db
        self.interval_s = interval_s
        self.db: Any = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Every flush_interval until ``stopping`` (errors are logged, the data stays)."""
        while not stopping.is_set():
            await sleep_or_stop(stopping, self.interval_s)
            if not stopping.is_set():
                await self.flush_once()

    async def flush_once(self) -> bool:
        """One write-behind flush; False (logged) when PostgreSQL or Redis failed."""
        if self.db_factory is None:
            return True
        try:
            if self.db is None:
                self.db = await self.db_factory()
            await self.tracker.flush(self.db)
        except Exception as exc:  # an outage is logged; the data stays in Redis
            log.warning(
                "write-behind flush failed: %s", describe(exc), extra={"action": "flush_failed"}
            )
            self.metrics.flush_failures.inc()
            return False
        self.metrics.flush_last_success.set_to_current_time()
        return True

    async def dirty_left(self) -> bool:
        """Whether the write-behind still has work (dirty jobs or failures); False if Redis
        failed."""
        try:
            left: Any = await self.redis.scard(keys.JOBS_DIRTY)
            failures: Any = await self.redis.llen(keys.FAILURES_PENDING)
        except _REDIS_ERRORS:
            return False
        return bool(left or failures)

    async def drain(self) -> None:
        """The final flush: until nothing is dirty, or PostgreSQL or Redis fails."""
        for _ in range(DRAIN_FLUSHES):
            if not await self.flush_once() or not await self.dirty_left():
                break

    async def close(self) -> None:
        """Close the PostgreSQL pool it opened (unless ``close_db`` is False; idempotent)."""
        if self.db is not None and self.close_db:
            with contextlib.suppress(Exception):
                await self.db.close()
        self.db = None
