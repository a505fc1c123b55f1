"""Shutdown's second deadline (saq's): an engine that ignores cancellation, or whose close()
hangs, cannot hold the pool past graceful_shutdown_timeout + 2 x hard_deadline_s. What it
abandons stays pending for another consumer, ``worker.stopped`` is still emitted, and the
process exits 0 without waiting for the abandoned tasks."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.workers.worker_pool import WorkerPool

from tests.support.chunks import enqueue_job, events_of, job_hash
from tests.support.pools import pool_config, redis_for, running_pool, wait_for
from tests.support.procs import fleet, worker_env
from tests.support.servers import PostgresServer, RedisServer
from tests.support.stubborn_worker import StubbornEngine

pytestmark = pytest.mark.integration

GRACE_S = 0.5  # the pool's hard deadline is then its minimum, HARD_DEADLINE_MIN_S


async def _stop_within_bound(pool: WorkerPool, task: asyncio.Task[str]) -> None:
    """Stop like SIGTERM; the run must end within its two deadlines (plus 2 s of slack for
    the steps that are fast on a healthy Redis): the bound is the behaviour under test."""
    pool.request_stop("signal")
    bound = pool.config.graceful_shutdown_timeout_s + 2 * pool.config.hard_deadline_s + 2.0
    assert await asyncio.wait_for(task, bound) == "signal"


async def test_chunks_ignoring_cancellation_are_abandoned_and_stay_pending(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 4)
    engine = StubbornEngine()
    redis = redis_for(redis_srv)
    config = pool_config(pool_size=2, batch_size=4, graceful_shutdown_timeout_s=GRACE_S)
    pool = WorkerPool(redis, engine, config, "stubborn:1")
    task = asyncio.create_task(pool.run())
    try:
        await wait_for(lambda: engine.in_flight == 2, what="both slots in flight")
        await _stop_within_bound(pool, task)
        assert sorted(pool.abandoned) == ["slot-0", "slot-1"]
        assert engine.cancels_ignored >= 2  # cancelled, and it did not care
        # all 4 entries stay pending: 2 abandoned in flight, 2 fetched ahead and released
        summary = await redis_client.xpending(
            keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP
        )
        assert summary["pending"] == 4
        assert len(pool.released) == 4
        stopped = [e for e in await events_of(redis_client, "") if e.type == "worker.stopped"]
        assert [e.data["left_pending"] for e in stopped] == [4]
        # another consumer takes the abandoned chunks over and finishes the job
        async with running_pool(redis_srv, NoopEngine(), consumer="heir:1", reclaim_idle_ms=200):
            await wait_for(lambda: _status_is(redis_client, job_id, "completed"))
        assert (await job_hash(redis_client, job_id))["chunks_processed"] == "4"
    finally:
        engine.release.set()  # the abandoned coroutines end; the test loop closes cleanly
        await redis.aclose()


async def test_engine_close_that_hangs_is_abandoned_and_stop_is_announced(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 1)
    engine = StubbornEngine(hang_in_close=True)
    engine.release.set()  # chunks finish at once ...
    redis = redis_for(redis_srv)
    pool = WorkerPool(redis, engine, pool_config(graceful_shutdown_timeout_s=GRACE_S), "c:1")
    task = asyncio.create_task(pool.run())
    try:
        await wait_for(lambda: _status_is(redis_client, job_id, "completed"))
        engine.release.clear()  # ... and close() hangs, swallowing its cancellation
        await _stop_within_bound(pool, task)
        assert pool.abandoned == ["engine-close"]
        types = [e.type for e in await events_of(redis_client, "")]
        assert types == ["worker.started", "worker.stopped"]
        summary = await redis_client.xpending(
            keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP
        )
        assert summary["pending"] == 0
    finally:
        engine.release.set()
        await redis.aclose()


async def test_the_process_exits_without_waiting_for_abandoned_tasks(
    redis_client: Any,
    pg_pool: Any,
    rendered_root: Path,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    tmp_path: Path,
) -> None:
    await enqueue_job(redis_client, pg_pool, 2)
    env = worker_env(
        rendered_root,
        redis_srv,
        postgres_srv,
        pg_database,
        graceful_shutdown_timeout_s="1",
        pool_size="2",
    )
    with fleet(env, tmp_path, module="tests.support.stubborn_worker") as workers:
        worker = workers.spawn("1")
        await wait_for(lambda: worker.log().count("action=stubborn_started") == 2)
        worker.signal(signal.SIGTERM)
        # grace 1 s + two hard deadlines of 1 s + 5 s of slack for the interpreter's exit
        assert await worker.exited(timeout_s=8) == 0
        log = worker.log()
    # the slots of the pool that held the chunks, then engine.close() of every workspace's
    # engine: this engine (like noop) serves every declared workspace, an engine each
    assert log.count("action=shutdown_abandon") == 1 + len(keys.WORKSPACES)
    assert "action=exit_abandoning" in log
    assert worker.left_pending() == 2
    summary = await redis_client.xpending(
        keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP
    )
    assert summary["pending"] == 2
    stopped = [e for e in await events_of(redis_client, "") if e.type == "worker.stopped"]
    assert [e.data["left_pending"] for e in stopped] == [2]


async def _status_is(redis: Any, job_id: str, status: str) -> bool:
    return (await job_hash(redis, job_id)).get("status") == status
