"""Reclaim, leases, redelivery and poison messages with real consumers on a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.services import redis_streams

from tests.support.chunks import dead_letters, enqueue_job, job_hash
from tests.support.pools import metric, running_pool, wait_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration


async def _status(redis: Any, job_id: str) -> str:
    return (await job_hash(redis, job_id)).get("status", "")


async def _done(redis: Any, job_id: str) -> bool:
    return await _status(redis, job_id) in {"completed", "completed_with_errors", "failed"}


async def _take(redis: Any, consumer: str, n: int) -> list[str]:
    """Deliver n entries to ``consumer`` without acknowledging them (a consumer that dies)."""
    await redis_streams.ensure_group(redis, keys.ingestion_stream(keys.WORKSPACES[0]))
    entries = await redis_streams.read_group(
        redis, keys.ingestion_stream(keys.WORKSPACES[0]), consumer, n, None
    )
    return [entry_id for entry_id, _ in entries]


async def test_starting_consumer_rereads_its_own_pending_first(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 6)
    mine = await _take(redis_client, "me:1", 3)  # my predecessor died holding these
    engine = NoopEngine()
    # reclaim_idle_ms is long: only rereading my own PEL (ID 0) can get these back now
    async with running_pool(
        redis_srv, engine, consumer="me:1", reclaim_idle_ms=60_000, batch_size=3, pool_size=1
    ) as pool:
        await wait_for(lambda: _done(redis_client, job_id))
        assert metric(pool, "shield_worker_entries_reclaimed_total") == 0
    assert len(mine) == 3
    assert (await job_hash(redis_client, job_id))["chunks_processed"] == "6"
    assert sorted(engine.calls.values()) == [1] * 6


async def test_chunk_delivered_twice_counts_once(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """A consumer recorded c000001's outcome, then died before its XACK (simulated: the seen
    set has the chunk and the entry is still pending): the survivor acks it unprocessed."""
    job_id = await enqueue_job(redis_client, pg_pool, 2)
    await _take(redis_client, "dead:1", 2)
    await redis_client.sadd(keys.job_seen(job_id), "c000001")
    await redis_client.hset(
        keys.job(job_id), mapping={"chunks_processed": 1, "status": "processing"}
    )
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, reclaim_idle_ms=200):
        await wait_for(lambda: _done(redis_client, job_id))
    h = await job_hash(redis_client, job_id)
    assert (h["status"], h["chunks_processed"]) == ("completed", "2")
    assert list(engine.calls) == [(job_id, "c000002")]


async def test_poison_message_is_dead_lettered_not_looped(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 2)
    retry_attempts = 1
    (poison,) = await _take(redis_client, "crashy:1", 1)
    for _ in range(retry_attempts + 1):  # it crashed its consumer this many more times
        await redis_client.xclaim(
            keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP, "crashy:1", 0, [poison]
        )
    engine = NoopEngine()
    async with running_pool(
        redis_srv, engine, consumer="crashy:1", retry_attempts=retry_attempts
    ) as pool:
        await wait_for(lambda: _done(redis_client, job_id))
        assert pool.failed == 1
    (dl,) = await dead_letters(redis_client)
    assert dl["stream_id"] == poison
    assert dl["error"].startswith("poison: delivered 4 times")
    assert list(engine.calls) == [(job_id, "c000002")]
    assert await _status(redis_client, job_id) == "completed_with_errors"


async def test_live_lease_is_not_reclaimed_while_processing(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """A chunk that runs 3x the reclaim idle time while a second pool polls: processed once."""
    idle_ms = 300
    job_id = await enqueue_job(
        redis_client, pg_pool, 1, meta=lambda n: {"noop_sleep_s": 3 * idle_ms / 1000}
    )
    slow, other = NoopEngine(), NoopEngine()
    async with running_pool(redis_srv, slow, consumer="slow:1", reclaim_idle_ms=idle_ms):
        await wait_for(lambda: _holds(redis_client, "slow:1"))
        async with running_pool(
            redis_srv, other, consumer="other:1", reclaim_idle_ms=idle_ms
        ) as poller:
            await wait_for(lambda: _done(redis_client, job_id))
            assert metric(poller, "shield_worker_entries_reclaimed_total") == 0
    assert sum(slow.calls.values()) == 1
    assert sum(other.calls.values()) == 0
    assert (await job_hash(redis_client, job_id))["chunks_processed"] == "1"


async def _holds(redis: Any, consumer: str) -> bool:
    await redis_streams.ensure_group(redis, keys.ingestion_stream(keys.WORKSPACES[0]))
    rows = await redis.xpending_range(
        keys.ingestion_stream(keys.WORKSPACES[0]),
        keys.CONSUMER_GROUP,
        "-",
        "+",
        10,
        consumername=consumer,
    )
    return len(rows) > 0


async def test_renew_leases_never_steals_back(redis_client: Any) -> None:
    await redis_client.xadd(keys.ingestion_stream(keys.WORKSPACES[0]), {"v": "1"})
    (entry,) = await _take(redis_client, "a:1", 1)
    await redis_client.xclaim(
        keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP, "b:1", 0, [entry]
    )
    assert (
        await redis_streams.renew_leases(
            redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "a:1", [entry]
        )
        == []
    )
    assert await redis_streams.renew_leases(
        redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "b:1", [entry]
    ) == [entry]
    (row,) = await redis_client.xpending_range(
        keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP, "-", "+", 10
    )
    assert row["consumer"] == "b:1"
    assert row["times_delivered"] == 2  # JUSTID renewals do not count as deliveries


async def test_graceful_stop_finishes_in_flight_and_leaves_the_rest_pending(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 10, meta=lambda n: {"noop_sleep_s": 0.4})
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, pool_size=2, batch_size=10) as pool:
        await wait_for(lambda: engine.in_flight == 2)  # a batch in flight
    processed = int((await job_hash(redis_client, job_id))["chunks_processed"])
    state = await redis_streams.group_state(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    assert state is not None
    # in-flight chunks finished; unstarted ones are pending (for others), none is lost
    assert processed == pool.processed >= 2
    assert processed + state.pending + (state.lag or 0) == 10
    assert await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0])) == 10 - processed
    assert await dead_letters(redis_client) == []
