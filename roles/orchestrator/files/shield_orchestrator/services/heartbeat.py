"""Worker heartbeats and the measured processing rate (for /health/detailed).

Each worker process writes ``keys.worker(consumer)`` (hash, TTL 3 heartbeat intervals) and
its score in ``keys.WORKERS`` (sorted set: consumer -> last_seen); the hash's ``workspaces``
field (JSON: workspace -> since when) says which workspaces the process serves. The rate is
measured over a sliding window of completed chunks, never a constant.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from shield_orchestrator import keys


class RateMeter:
    """Chunks per second over the last ``window_s`` seconds (1-second buckets)."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [second, count]
        self._started = clock()
        self.total = 0

    def add(self, n: int = 1) -> None:
        now = int(self._clock())
        if self._buckets and self._buckets[-1][0] == now:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([now, n])
        self.total += n

    def rate(self) -> float:
        now = self._clock()
        while self._buckets and self._buckets[0][0] <= now - self.window_s:
            self._buckets.popleft()
        span = min(self.window_s, max(now - self._started, 1.0))
        return sum(b[1] for b in self._buckets) / span


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    consumer: str
    host: str
    pid: int
    started_at: float
    last_seen: float
    processed: int
    failed: int
    in_flight: int
    rate: float  # chunks/s over the meter's window
    engine: str
    state: str  # running | draining | stopped
    # the workspaces this process serves now -> since when (epoch s)
    workspaces: Mapping[str, float] = field(default_factory=dict)


async def beat(redis: Redis, b: WorkerBeat, interval_s: float) -> None:
    """Publish one heartbeat (hash + TTL 3 intervals, and the WORKERS index)."""
    key = keys.worker(b.consumer)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "consumer": b.consumer,
                "host": b.host,
                "pid": b.pid,
                "started_at": f"{b.started_at:.3f}",
                "last_seen": f"{b.last_seen:.3f}",
                "processed": b.processed,
                "failed": b.failed,
                "in_flight": b.in_flight,
                "rate": f"{b.rate:.3f}",
                "engine": b.engine,
                "state": b.state,
                "workspaces": json.dumps(dict(b.workspaces), sort_keys=True),
            },
        )
        pipe.expire(key, max(1, int(3 * interval_s)))
        pipe.zadd(keys.WORKERS, {b.consumer: b.last_seen})
        await pipe.execute()


async def forget(redis: Redis, consumer: str) -> None:
    """Remove a worker's heartbeat (clean stop)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.worker(consumer))
        pipe.zrem(keys.WORKERS, consumer)
        await pipe.execute()


async def read_workers(redis: Redis) -> list[WorkerBeat]:
    """Workers whose heartbeat hash is alive (stale index entries are pruned)."""
    consumers: Any = await redis.zrange(keys.WORKERS, 0, -1)
    if not consumers:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for c in consumers:
            pipe.hgetall(keys.worker(c))
        hashes: list[Any] = await pipe.execute()
    out: list[WorkerBeat] = []
    stale: list[str] = []
    for c, h in zip(consumers, hashes, strict=True):
        if not h:
            stale.append(c)
            continue
        out.append(
            WorkerBeat(
                consumer=c,
                host=h.get("host", ""),
                pid=int(h.get("pid") or 0),
                started_at=float(h.get("started_at") or 0),
                last_seen=float(h.get("last_seen") or 0),
                processed=int(h.get("processed") or 0),
                failed=int(h.get("failed") or 0),
                in_flight=int(h.get("in_flight") or 0),
                rate=float(h.get("rate") or 0),
                engine=h.get("engine", ""),
                state=h.get("state", ""),
                workspaces=_workspaces(h.get("workspaces")),
            )
        )
    if stale:
        await redis.zrem(keys.WORKERS, *stale)
    return out


def _workspaces(raw: str | None) -> dict[str, float]:
    """The ``workspaces`` field of a heartbeat hash ({} when absent or not JSON)."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}
