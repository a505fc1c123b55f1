"""Fault 3: Redis restarted mid-ingestion (AOF on, appendfsync everysec).

Two worker processes ingest N chunks (short 2,000; long 20,000); Redis is restarted (short
once, long three times) each time the counted total crosses the next mark. The same worker
processes reconnect (none exits), the counted total read just before a restart is never
lower afterwards (no acknowledged progress lost), and every job completes with counts equal
to the submitted set, nothing pending, no dead letter.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.faults.support import (
    RECORDER_FINISHED,
    SEED,
    all_terminal,
    counted,
    dead_letters,
    job_fields,
    recorded,
    recorded_keys,
    scale,
    stream_state,
    submit,
)
from tests.support.pools import wait_for
from tests.support.procs import Fleet
from tests.support.servers import RedisServer

pytestmark = pytest.mark.acceptance

N_JOBS = 4
CHUNKS_PER_JOB = scale(500, 5000)
RESTARTS = scale(1, 3)


async def test_redis_restart_loses_no_acknowledged_progress(
    sut: Any, sut_redis: RedisServer, recorder: Any, pg_pool: Any, workers: Fleet
) -> None:
    rng = random.Random(SEED)
    jobs = await submit(sut, pg_pool, N_JOBS, CHUNKS_PER_JOB)
    total = N_JOBS * CHUNKS_PER_JOB
    procs = [workers.spawn(i, noop_delay_ms="3") for i in ("1", "2")]
    marks = sorted(rng.sample(range(total // 5, total * 4 // 5), RESTARTS))
    for mark in marks:
        await wait_for(lambda m=mark: _at_least(sut, jobs, m), 180, f"{mark} counted")
        before = await counted(sut, jobs)
        sut_redis.restart()  # SIGTERM (AOF written), then the same port again
        after = await counted(sut, jobs)
        assert after >= before, "acknowledged progress was lost across the restart"
        print(f"faults: Redis restarted at {before}/{total} counted, {after} after")
    await wait_for(lambda: all_terminal(sut, jobs), 300, "every job terminal")

    assert all(p.running() for p in procs), "a worker exited instead of reconnecting"
    for job_id, n in jobs.items():
        h = await job_fields(sut, job_id)
        got = (h["status"], h["chunks_processed"], h["chunks_failed"])
        assert got == ("completed", str(n), "0")
    assert await counted(sut, jobs) == total
    await wait_for(lambda: _drained(sut), 60, "stream and group empty")
    assert await dead_letters(sut) == []
    assert set(await recorded(recorder, RECORDER_FINISHED)) == recorded_keys(jobs)


async def _at_least(redis: Any, jobs: dict[str, int], mark: int) -> bool:
    return await counted(redis, jobs) >= mark


async def _drained(redis: Any) -> bool:
    return await stream_state(redis) == (0, 0)
