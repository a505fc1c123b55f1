"""The process's presence: its heartbeat and gauges, and its worker.started/stopped events.

Each beat (every health_check_interval) writes the heartbeat hash keys.worker(consumer)
(services/heartbeat.py: what ``shieldctl workers``, the API's health and the other processes'
workspace balance read) from the process's counters, and sets the rate, pending and lag gauges
(the last two from the consumer group of each stream it reads). ``started`` and ``stopped``
announce the process on the event stream; ``stopped`` also removes the heartbeat hash. The
counters come from a ``Counters``: a standalone WorkerPool, or the process's WorkspacePools
summing the pools of the workspaces it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator.services import heartbeat, redis_streams
from shield_orchestrator.services.event_bus import EventType, emit
from shield_orchestrator.services.metrics import WorkerMetrics

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)


class Counters(Protocol):
    """What a beat reports about the process (read at each beat)."""

    @property
    def started_at(self) -> float: ...

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


class Heartbeat:
    """Beats for ``consumer`` every ``interval_s``; announces its start and stop."""

    def __init__(
        self,
        redis: Redis,
        consumer: str,
        interval_s: float,
        counters: Counters,
        rate: heartbeat.RateMeter,
        metrics: WorkerMetrics,
    ) -> None:
        self.redis, self.consumer, self.interval_s = redis, consumer, interval_s
        self.counters, self.rate, self.metrics = counters, rate, metrics

    async def run(self, stopping: asyncio.Event) -> None:
        """Beat every interval, ``running``, then ``draining`` once ``stopping`` is set: it
        beats through the drain until its owner cancels it (the owner then removes the hash)."""
        while True:
            await self.beat("draining" if stopping.is_set() else "running")
            await asyncio.sleep(self.interval_s)

    async def beat(self, state: str) -> None:
        """One beat now (the ownership loop beats at once after a change; errors logged)."""
        c = self.counters
        rate = self.rate.rate()
        self.metrics.rate.set(rate)
        try:
            await heartbeat.beat(
                self.redis,
                heartbeat.WorkerBeat(
                    self.consumer,
                    socket.gethostname(),
                    os.getpid(),
                    c.started_at,
                    time.time(),
                    c.processed,
                    c.failed,
                    c.running,
                    rate,
                    c.engine_name,
                    state,
                    c.workspaces,
                ),
                self.interval_s,
            )
            groups = [await redis_streams.group_state(self.redis, s) for s in c.streams]
        except _REDIS_ERRORS as exc:
            log.warning("heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})
            return
        known = [g for g in groups if g is not None]
        self.metrics.pending.set(sum(g.pending for g in known))
        lags = [g.lag for g in known]
        if known and None not in lags:
            self.metrics.lag.set(sum(lag or 0 for lag in lags))

    def info(self, **extra: Any) -> dict[str, Any]:
        """The body of the worker.started and worker.stopped events."""
        return {
            "consumer": self.consumer,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "engine": self.counters.engine_name,
            **extra,
        }

    async def started(self, **extra: Any) -> None:
        """The worker.started event (``extra``: what this kind of process adds)."""
        await emit(self.redis, EventType.WORKER_STARTED, self.info(**extra))

    async def stopped(self, reason: str, left_pending: int, **extra: Any) -> None:
        """The worker.stopped event and the heartbeat's removal (a Redis error skips them: the
        hash expires on its own), then the ``worker_stopped`` log line."""
        c = self.counters
        info = self.info(
            **extra,
            reason=reason,
            processed=c.processed,
            failed=c.failed,
            left_pending=left_pending,
        )
        with contextlib.suppress(*_REDIS_ERRORS):
            await emit(self.redis, EventType.WORKER_STOPPED, info)
            await heartbeat.forget(self.redis, self.consumer)
        log.info(
            "worker %s stopped (%s): processed=%d failed=%d left_pending=%d",
            self.consumer,
            reason,
            c.processed,
            c.failed,
            left_pending,
            extra={"action": "worker_stopped"},
        )
