"""The pool's background loops: leases, reclaim, heartbeat, write-behind flush.

Each runs as a named task under the pool's Supervisor (workers/supervisor.py), so a crash is
logged, counted and restarted; none may die silently (a dead reclaim loop would leave a dead
consumer's chunks pending forever).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator import keys
from shield_orchestrator.services import heartbeat, redis_streams
from shield_orchestrator.services.retry import describe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from shield_orchestrator.services.job_tracker import JobTracker
    from shield_orchestrator.services.metrics import WorkerMetrics
    from shield_orchestrator.workers.worker_pool import PoolConfig, WorkerPool


log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)


class Process(Protocol):
    """What the heartbeat and the flusher read: a standalone WorkerPool, or the process's
    WorkspacePools (workers/workspaces.py) summing the pools of the workspaces it serves."""

    redis: Redis
    consumer: str
    config: PoolConfig
    metrics: WorkerMetrics
    tracker: JobTracker
    started_at: float
    rate: heartbeat.RateMeter
    stopping: asyncio.Event
    db_factory: Callable[[], Awaitable[Any]] | None
    db: Any

    @property
    def processed(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def running(self) -> int: ...

    @property
    def engine_name(self) -> str: ...

    @property
    def streams(self) -> list[str]: ...

    @property
    def workspaces(self) -> dict[str, float]: ...

    async def sleep_or_stop(self, seconds: float) -> None: ...


# --- leases and reclaim -------------------------------------------------------------------


async def lease_loop(pool: WorkerPool) -> None:
    """Every reclaim_idle/3: renew the lease (XCLAIM JUSTID) of every entry the pool holds."""
    period = max(pool.config.reclaim_idle_ms / 3000, 0.02)
    while True:
        await asyncio.sleep(period)
        ids = list(pool.held_ids)
        if not ids:
            continue
        try:
            owned = set(
                await redis_streams.renew_leases(pool.redis, pool.stream, pool.consumer, ids)
            )
        except _REDIS_ERRORS as exc:
            log.warning("lease renewal failed: %s", exc, extra={"action": "lease_failed"})
            continue
        lost = [i for i in ids if i not in owned and i in pool.held_ids]
        if lost:
            log.info(
                "lease lost on %d entries (acked or reclaimed)",
                len(lost),
                extra={"action": "lease_lost"},
            )


async def reclaim_loop(pool: WorkerPool) -> None:
    """Every reclaim_idle/2: take entries idle that long from dead consumers (XAUTOCLAIM)."""
    period = max(pool.config.reclaim_idle_ms / 2000, 0.05)
    start = "0-0"
    while not pool.stopping.is_set():
        await pool.sleep_or_stop(period)
        free = min(pool.free_slots(), pool.quota())
        if pool.stopping.is_set() or free <= 0:
            continue
        try:
            start, entries, _deleted = await redis_streams.reclaim(
                pool.redis, pool.stream, pool.consumer, pool.config.reclaim_idle_ms, free, start
            )
        except _REDIS_ERRORS as exc:
            log.warning("reclaim failed: %s", exc, extra={"action": "reclaim_failed"})
            continue
        entries = [e for e in entries if e[0] not in pool.held_ids]
        if entries:
            pool.metrics.reclaimed.inc(len(entries))
            log.info("reclaimed %d idle entries", len(entries), extra={"action": "reclaimed"})
            await pool.admit(entries, redelivered=True)


# --- heartbeat and write-behind -----------------------------------------------------------


async def heartbeat_loop(pool: Process) -> None:
    """Every health_check_interval: the heartbeat hash, rate and group gauges."""
    while True:
        await beat(pool, "draining" if pool.stopping.is_set() else "running")
        await asyncio.sleep(pool.config.health_check_interval_s)


async def beat(pool: Process, state: str) -> None:
    rate = pool.rate.rate()
    pool.metrics.rate.set(rate)
    try:
        await heartbeat.beat(
            pool.redis,
            heartbeat.WorkerBeat(
                pool.consumer,
                socket.gethostname(),
                os.getpid(),
                pool.started_at,
                time.time(),
                pool.processed,
                pool.failed,
                pool.running,
                rate,
                pool.engine_name,
                state,
                pool.workspaces,
            ),
            pool.config.health_check_interval_s,
        )
        groups = [await redis_streams.group_state(pool.redis, s) for s in pool.streams]
    except _REDIS_ERRORS as exc:
        log.warning("heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})
        return
    known = [g for g in groups if g is not None]
    pool.metrics.pending.set(sum(g.pending for g in known))
    lags = [g.lag for g in known]
    if known and None not in lags:
        pool.metrics.lag.set(sum(lag or 0 for lag in lags))


async def flush_loop(pool: Process) -> None:
    """Every flush_interval: the write-behind flush (errors are logged, data stays)."""
    while not pool.stopping.is_set():
        await pool.sleep_or_stop(pool.config.flush_interval_s)
        if not pool.stopping.is_set():
            await flush_once(pool)


async def flush_once(pool: Process) -> bool:
    """One write-behind flush; False (logged) when PostgreSQL or Redis failed."""
    if pool.db_factory is None:
        return True
    try:
        if pool.db is None:
            pool.db = await pool.db_factory()
        await pool.tracker.flush(pool.db)
    except Exception as exc:  # an outage is logged; the data stays in Redis
        log.warning(
            "write-behind flush failed: %s", describe(exc), extra={"action": "flush_failed"}
        )
        pool.metrics.flush_failures.inc()
        return False
    pool.metrics.flush_last_success.set_to_current_time()
    return True


async def dirty_left(pool: Process) -> bool:
    """Whether the write-behind still has work (dirty jobs or failures); False if Redis failed."""
    try:
        left: Any = await pool.redis.scard(keys.JOBS_DIRTY)
        failures: Any = await pool.redis.llen(keys.FAILURES_PENDING)
    except _REDIS_ERRORS:
        return False
    return bool(left or failures)
