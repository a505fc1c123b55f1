"""The rendered worker as a real process (``python -m shield_orchestrator.workers N``),
sent real signals: SIGTERM mid-batch, SIGKILL, max tasks per child. (A long task's lease
across processes is the fault suite's: tests/faults/test_long_chunk_lease.py.)"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services import redis_streams

from tests.support.chunks import (
    chunk_ids,
    dead_letters,
    enqueue_job,
    events_of,
    job_hash,
    progress_chunk_ids,
)
from tests.support.pools import wait_for
from tests.support.procs import WorkerProc, worker_env, worker_processes
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.acceptance

Spawn = Callable[..., WorkerProc]


@pytest.fixture
def spawn(
    rendered_root: Path,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    tmp_path: Path,
) -> Iterator[Spawn]:
    env = worker_env(rendered_root, redis_srv, postgres_srv, pg_database)
    with worker_processes(env, tmp_path) as factory:
        yield factory


async def _pending(redis: Any, consumer: str | None = None) -> int:
    stream = keys.ingestion_stream(keys.WORKSPACES[0])
    await redis_streams.ensure_group(redis, stream)
    kw = {"consumername": consumer} if consumer else {}
    rows = await redis.xpending_range(stream, keys.CONSUMER_GROUP, "-", "+", 1000, **kw)
    return len(rows)


async def _processed(redis: Any, job_id: str) -> int:
    return int((await job_hash(redis, job_id)).get("chunks_processed", 0))


async def _status(redis: Any, job_id: str) -> str:
    return (await job_hash(redis, job_id)).get("status", "")


async def test_sigterm_mid_batch_acks_in_flight_leaves_rest_pending_loses_nothing(
    redis_client: Any, pg_pool: Any, spawn: Spawn
) -> None:
    total = 16
    job_id = await enqueue_job(redis_client, pg_pool, total, meta=lambda n: {"noop_sleep_s": 0.5})
    worker = spawn("1")
    # a batch is in flight and at least one earlier batch was acknowledged
    await wait_for(lambda: _at_least(redis_client, job_id, 4))
    await wait_for(lambda: _holds(redis_client, "acceptance:1"))
    worker.signal(signal.SIGTERM)
    assert await worker.exited() == 0
    log = worker.log()
    assert "action=worker_stopping" in log
    assert "action=worker_stopped" in log

    processed = await _processed(redis_client, job_id)
    pending = await _pending(redis_client)
    queued = await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0]))
    assert 4 <= processed < total
    assert queued == total - processed  # acked entries are deleted, nothing else is
    # exactly what it fetched and did not finish is pending; the rest was never delivered
    assert pending == worker.left_pending()
    assert await dead_letters(redis_client) == []
    stopped = [e for e in await events_of(redis_client, "") if e.type == "worker.stopped"]
    assert stopped[-1].data["reason"] == "SIGTERM"
    assert stopped[-1].data["processed"] == processed
    assert stopped[-1].data["left_pending"] == pending
    # the write-behind was flushed on the way out
    row = await pg_pool.fetchrow("SELECT chunks_processed FROM jobs WHERE job_id = $1", job_id)
    assert row["chunks_processed"] == processed

    # its successor (same instance) rereads what was left pending, and every chunk counts once
    successor = spawn("1")
    await wait_for(lambda: _is(redis_client, job_id, "completed"))
    h = await job_hash(redis_client, job_id)
    assert (h["chunks_processed"], h["chunks_failed"]) == (str(total), "0")
    reported = progress_chunk_ids(await events_of(redis_client, job_id))
    assert sorted(reported) == chunk_ids(total)  # each exactly once
    successor.signal(signal.SIGINT)
    assert await successor.exited() == 0


async def test_sigterm_past_the_grace_period_cancels_and_leaves_pending(
    redis_client: Any, pg_pool: Any, spawn: Spawn
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 2, meta=lambda n: {"noop_sleep_s": 60})
    worker = spawn("1", graceful_shutdown_timeout_s="1", pool_size="2")
    await wait_for(lambda: _pending_is(redis_client, 2))
    worker.signal(signal.SIGTERM)
    assert await worker.exited(timeout_s=20) == 0
    assert "action=shutdown_cancel" in worker.log()
    assert await _processed(redis_client, job_id) == 0
    assert await _pending(redis_client, "acceptance:1") == 2  # left for the next consumer


async def test_sigkill_leaves_pending_and_a_survivor_reclaims(
    redis_client: Any, pg_pool: Any, spawn: Spawn
) -> None:
    total = 8
    job_id = await enqueue_job(redis_client, pg_pool, total, meta=lambda n: {"noop_sleep_s": 1.0})
    doomed = spawn("1")
    await wait_for(lambda: _holds(redis_client, "acceptance:1"))
    doomed.signal(signal.SIGKILL)
    assert await doomed.exited() == -signal.SIGKILL
    assert await _pending(redis_client, "acceptance:1") > 0  # a crash leaves them pending
    survivor = spawn("2")
    await wait_for(lambda: _is(redis_client, job_id, "completed"))
    assert await _processed(redis_client, job_id) == total
    assert await _pending(redis_client) == 0
    assert "action=reclaimed" in survivor.log()
    survivor.signal(signal.SIGTERM)
    assert await survivor.exited() == 0


async def test_max_tasks_per_child_exits_zero_by_itself(
    redis_client: Any, pg_pool: Any, spawn: Spawn
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 12)
    worker = spawn("1", max_tasks_per_child="5", batch_size="2")
    assert await worker.exited() == 0
    assert "stopping (max_tasks)" in worker.log()
    assert await _processed(redis_client, job_id) == 5
    assert await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0])) == 7


async def _at_least(redis: Any, job_id: str, n: int) -> bool:
    return await _processed(redis, job_id) >= n


async def _holds(redis: Any, consumer: str) -> bool:
    return await _pending(redis, consumer) > 0


async def _pending_is(redis: Any, n: int) -> bool:
    return await _pending(redis) == n


async def _is(redis: Any, job_id: str, status: str) -> bool:
    return await _status(redis, job_id) == status
