"""Run real WorkerPools in the test's event loop (integration tests of the worker runtime).

``running_pool`` starts ``pool.run()`` as a task with short test timings and, on exit, stops
it the way a signal does and waits for its shutdown sequence; the Redis client it made is
closed. ``wait_for`` polls a condition (tests assert behaviour, not wall-clock time: the
timeout only bounds a broken run).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tests.support.servers import RedisServer

FAST = {
    "block_ms": 100,
    "reclaim_idle_ms": 600,
    "flush_interval_ms": 200,
    "retry_base_delay_ms": 10,
    "retry_max_delay_ms": 50,
    "health_check_interval_s": 0.3,
    "graceful_shutdown_timeout_s": 5.0,
    "timeout_s": 5.0,
    "max_tasks_per_child": 0,
    "metrics_port": 0,
}


def redis_for(server: RedisServer) -> Any:
    from redis.asyncio import Redis

    return Redis(host="127.0.0.1", port=server.port, password=server.password,
                 decode_responses=True)  # fmt: skip


def pool_config(**overrides: Any) -> Any:
    from shield_orchestrator.workers.worker_pool import PoolConfig

    return dataclasses.replace(PoolConfig(), **{**FAST, **overrides})


@contextlib.asynccontextmanager
async def running_pool(
    server: RedisServer,
    engine: Any = None,
    consumer: str = "test:1",
    db: Any = None,
    workspace: str = "",
    **overrides: Any,
) -> AsyncIterator[Any]:
    """A started WorkerPool (NoopEngine by default) on ``workspace``'s stream (default: the
    first declared workspace's); stopped and awaited on exit."""

    from shield_orchestrator import keys
    from shield_orchestrator.engines.noop import NoopEngine
    from shield_orchestrator.workers.worker_pool import WorkerPool

    redis = redis_for(server)

    async def db_factory() -> Any:
        return db

    pool = WorkerPool(redis, engine or NoopEngine(), pool_config(**overrides), consumer,
                      db_factory if db is not None else None, close_db=False,
                      workspace=workspace or keys.WORKSPACES[0])  # fmt: skip
    task = asyncio.create_task(pool.run(), name=f"pool-{consumer}")
    try:
        yield pool
    finally:
        pool.request_stop("test")
        await asyncio.wait_for(task, 30)
        await redis.aclose()


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool],
    timeout_s: float = 20.0,
    what: str = "condition",
    every_s: float = 0.02,
) -> None:
    """Poll ``condition`` (a predicate, or a coroutine function) until it holds; the limit
    only bounds a broken run (AssertionError naming ``what`` after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s")
        await asyncio.sleep(every_s)


def metric(pool: Any, name: str, **labels: str) -> float:
    """A sample of the pool's Prometheus registry, as /metrics shows it (0 when absent)."""
    value = pool.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)
