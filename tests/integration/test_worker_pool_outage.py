"""The pool rides out a Redis restart: reads and acks fail for a while, nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.chunks import enqueue_job, job_hash
from tests.support.pools import metric, redis_for, running_pool, wait_for
from tests.support.servers import RedisServer, redis_server

pytestmark = pytest.mark.integration

OUTAGE_ACTIONS = {"fetch_failed", "ack_failed"}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test alone, with AOF so that a restart keeps the data."""
    with redis_server(appendonly=True) as server:
        yield server


async def _processed(redis: Any, job_id: str) -> int:
    return int((await job_hash(redis, job_id)).get("chunks_processed") or 0)


def _outage_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "action", "") in OUTAGE_ACTIONS]


async def test_redis_restart_mid_job_loses_nothing(
    own_redis: RedisServer, pg_pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis is down mid-job until the pool has logged a failed read or ack (the outage was
    seen), then back: the job completes with every chunk counted once."""
    caplog.set_level(logging.WARNING)
    redis = redis_for(own_redis)
    try:
        job_id = await enqueue_job(redis, pg_pool, 30, meta=lambda n: {"noop_sleep_s": 0.05})
        async with running_pool(own_redis, pool_size=2, batch_size=2) as pool:
            await wait_for(lambda: _at_least(redis, job_id, 4))
            assert _outage_logged(caplog) == []
            await asyncio.to_thread(own_redis.stop)  # SIGTERM: Redis writes its AOF
            # the pool runs against no Redis until it has noticed
            await wait_for(lambda: bool(_outage_logged(caplog)), what="a fetch/ack failure")
            await asyncio.to_thread(own_redis.start)

            async def done() -> bool:
                return (await job_hash(redis, job_id)).get("status") == "completed"

            await wait_for(done, timeout_s=60)

            # The job can read "completed" in Redis before the pool has handled the reply of the
            # Lua call that completed it (after the outage one call records most chunks at
            # once): wait for the pool's own count, then check nothing was counted twice. An
            # outcome whose reply was lost is recorded again and answers "duplicate".
            def counted() -> float:
                return pool.processed + metric(pool, "shield_worker_chunks_duplicate_total")

            await wait_for(lambda: counted() >= 30, what="the pool's count of its outcomes")
            assert pool.processed <= 30 <= counted()
        h = await job_hash(redis, job_id)
        assert (h["chunks_processed"], h["chunks_failed"]) == ("30", "0")
    finally:
        await redis.aclose()


async def _at_least(redis: Any, job_id: str, n: int) -> bool:
    return await _processed(redis, job_id) >= n
