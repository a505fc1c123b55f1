"""Fault 4: PostgreSQL stopped mid-ingestion (short: until Redis shows every job done; long:
at least 60 s), then started again.

Processing does not need PostgreSQL: the counted total keeps growing while it is down and
every job completes in Redis. The write-behind catches up after the restart: every job row
ends with the same status and counts as Redis and the submitted set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from shield_orchestrator.database.migrate import migrate

from tests.faults.support import (
    LONG,
    all_terminal,
    counted,
    dead_letters,
    job_fields,
    pg_counts,
    scale,
    submit,
    worker_env,
)
from tests.support.pools import wait_for
from tests.support.procs import RECORDING_MODULE, fleet
from tests.support.servers import PostgresServer, RedisServer, postgres_server

pytestmark = pytest.mark.acceptance

N_JOBS = 4
CHUNKS_PER_JOB = scale(500, 5000)
OUTAGE_MIN_S = 60 if LONG else 0  # the long form holds PostgreSQL down at least this long
DB = "faults"


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test only (it is stopped and started again)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
async def own_db(own_pg: PostgresServer) -> PostgresServer:
    admin = await asyncpg.connect(own_pg.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(own_pg.dsn(DB))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return own_pg


async def test_postgres_outage_processing_continues_history_catches_up(
    sut: Any,
    sut_redis: RedisServer,
    own_db: PostgresServer,
    redis_srv: RedisServer,
    rendered_root: Path,
    tmp_path: Path,
) -> None:
    db = await asyncpg.create_pool(own_db.dsn(DB), min_size=1, max_size=2)
    jobs = await submit(sut, db, N_JOBS, CHUNKS_PER_JOB)
    await db.close()
    total = N_JOBS * CHUNKS_PER_JOB
    env = worker_env(rendered_root, sut_redis, own_db, DB, redis_srv)
    with fleet(env, tmp_path, RECORDING_MODULE) as workers:
        procs = [workers.spawn(i, noop_delay_ms="3") for i in ("1", "2")]
        await wait_for(lambda: _at_least(sut, jobs, total // 5), 120, "20% counted")
        own_db.stop()
        stopped_at = time.monotonic()
        at_stop = await counted(sut, jobs)
        await wait_for(lambda: all_terminal(sut, jobs), 300, "jobs done while PG is down")
        assert await counted(sut, jobs) == total > at_stop  # processing went on without PG
        await asyncio.sleep(max(0.0, OUTAGE_MIN_S - (time.monotonic() - stopped_at)))
        own_db.start()

        db = await _pool_when_ready(own_db)
        try:

            async def caught_up() -> bool:
                rows = await pg_counts(db, jobs)
                return all(rows.get(j) == ("completed", n, 0) for j, n in jobs.items())

            await wait_for(caught_up, 120, "PostgreSQL history caught up")
        finally:
            await db.close()
        assert all(p.running() for p in procs), "a worker exited during the outage"
        print(workers.logs())  # shown only on failure
    for job_id, n in jobs.items():
        h = await job_fields(sut, job_id)
        assert (h["status"], h["chunks_processed"]) == ("completed", str(n))
    assert await dead_letters(sut) == []


async def _pool_when_ready(server: PostgresServer, tries: int = 100) -> Any:
    """A pool once the restarted server accepts connections (it listens before it does)."""
    for _ in range(tries):
        try:
            return await asyncpg.create_pool(server.dsn(DB), min_size=1, max_size=2)
        except asyncpg.CannotConnectNowError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"PostgreSQL did not accept connections after {tries} tries")


async def _at_least(redis: Any, jobs: dict[str, int], mark: int) -> bool:
    return await counted(redis, jobs) >= mark
