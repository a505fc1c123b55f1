"""The progress Lua and the write-behind flusher, on a real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from shield_orchestrator import keys
from shield_orchestrator.services import redis_streams
from shield_orchestrator.services.job_status import fetch_job
from shield_orchestrator.services.job_tracker import (
    ACK,
    FAILED,
    PROCESSED,
    FlushStats,
    JobTracker,
    Outcome,
    TrackerConfig,
)

from tests.support.chunks import (
    enqueue_job,
    events_of,
    job_hash,
    progress_chunk_ids,
)
from tests.support.pools import wait_for
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

# what asyncpg raises when the server closed or refuses the connection
PG_DOWN = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


async def _deliver(redis: Any, n: int, consumer: str = "t:1") -> list[tuple[str, str, str]]:
    """(entry id, job id, chunk id) of n entries delivered to ``consumer``."""
    await redis_streams.ensure_group(redis, keys.ingestion_stream(keys.WORKSPACES[0]))
    entries = await redis_streams.read_group(
        redis, keys.ingestion_stream(keys.WORKSPACES[0]), consumer, n, None
    )
    return [(i, f.get("job_id", ""), f.get("chunk_id", "")) for i, f in entries]


async def test_exactly_one_call_observes_completion(redis_client: Any, pg_pool: Any) -> None:
    """Many concurrent outcome calls, each chunk recorded twice: one terminal transition."""
    job_id = await enqueue_job(redis_client, pg_pool, 40)
    delivered = await _deliver(redis_client, 40)
    trackers = [JobTracker(redis_client) for _ in range(4)]
    for t in trackers:
        await t.load()
    batches = [[Outcome(e, j, c, PROCESSED) for e, j, c in delivered[k::4]] for k in range(4)]
    results = await asyncio.gather(
        *(t.record(b) for t, b in zip(trackers, batches, strict=True)),
        *(t.record(b) for t, b in zip(trackers, reversed(batches), strict=True)),
    )
    flat = [r for rs in results for r in rs]
    assert flat.count("completed") == 1
    assert flat.count("duplicate") == 40
    h = await job_hash(redis_client, job_id)
    assert (h["status"], h["chunks_processed"], h["chunks_failed"]) == ("completed", "40", "0")
    events = await events_of(redis_client, job_id)
    types = [e.type for e in events]
    assert types.count("ingestion.completed") == 1
    assert types[-1] == "ingestion.completed"
    assert sorted(progress_chunk_ids(events)) == sorted(c for _e, _j, c in delivered)
    assert types.count("ingestion.started") == 1


async def test_status_only_moves_forward(redis_client: Any, pg_pool: Any) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 1)
    delivered = await _deliver(redis_client, 1)
    tracker = JobTracker(redis_client)
    (e, j, c) = delivered[0]
    assert await tracker.record([Outcome(e, j, c, FAILED, error="boom", attempts=4)]) == ["failed"]
    # a late success of the same chunk (another delivery) changes nothing
    assert await tracker.record([Outcome(e, j, c, PROCESSED)]) == ["duplicate"]
    h = await job_hash(redis_client, job_id)
    assert (h["status"], h["chunks_processed"], h["chunks_failed"]) == ("failed", "0", "1")
    types = [e.type for e in await events_of(redis_client, job_id)]
    assert types == [
        "ingestion.queued",
        "ingestion.started",
        "ingestion.chunk_failed",
        "ingestion.failed",
    ]


async def test_xdel_only_after_xack_never_drops_unacked(redis_client: Any, pg_pool: Any) -> None:
    """The Lua deletes an entry only when ITS XACK acknowledged it: an entry that was never
    delivered, or that another consumer holds but we do not name, is never removed."""
    job_id = await enqueue_job(redis_client, pg_pool, 4)
    delivered = await _deliver(redis_client, 2)  # c000001, c000002 delivered; 3, 4 never read
    undelivered = [
        i for i, _f in await redis_client.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))
    ][2:]
    tracker = JobTracker(redis_client)
    (e0, j, c0), (e1, _j, _c1) = delivered
    await tracker.record([Outcome(e0, j, c0, PROCESSED)])
    # an outcome for an entry id that is not pending: XACK answers 0, so no XDEL
    assert await tracker.record([Outcome(undelivered[0], job_id, "c000003", ACK)]) == ["acked"]
    remaining = [
        i for i, _f in await redis_client.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))
    ]
    assert remaining == [e1, *undelivered]
    state = await redis_streams.group_state(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    assert state is not None
    assert state.pending == 1


async def test_unknown_job_is_dead_lettered(redis_client: Any) -> None:
    await redis_client.xadd(keys.ingestion_stream(keys.WORKSPACES[0]), {"job_id": "x"})
    (entry,) = [i for i, _j, _c in await _deliver(redis_client, 1)]
    tracker = JobTracker(redis_client)
    job = "11111111-2222-4333-8444-555555555555"
    assert await tracker.record([Outcome(entry, job, "c1", PROCESSED)]) == ["unknown"]
    (dl,) = await redis_client.xrange(keys.DEAD_LETTER_STREAM)
    assert dl[1]["error"] == "unknown job"
    assert await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0])) == 0


async def test_script_reloaded_after_script_flush(redis_client: Any, pg_pool: Any) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 2)
    (a, b) = await _deliver(redis_client, 2)
    tracker = JobTracker(redis_client)
    await tracker.record([Outcome(a[0], a[1], a[2], PROCESSED)])
    await redis_client.script_flush()
    assert await tracker.record([Outcome(b[0], b[1], b[2], PROCESSED)]) == ["completed"]
    assert (await job_hash(redis_client, job_id))["status"] == "completed"


async def _xact_commit(pg: Any) -> int:
    return int(
        await pg.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def test_flush_is_one_transaction_for_many_jobs_and_chunks(
    redis_client: Any, pg_pool: Any
) -> None:
    for _ in range(6):
        await enqueue_job(redis_client, pg_pool, 5)
    delivered = await _deliver(redis_client, 30)
    tracker = JobTracker(redis_client)
    outcomes = [
        Outcome(e, j, c, FAILED if c == "c000004" else PROCESSED, error="e", attempts=2)
        for e, j, c in delivered
    ]
    await tracker.record(outcomes)
    assert await redis_client.scard(keys.JOBS_DIRTY) == 6
    stats = await tracker.flush(pg_pool)
    assert (stats.jobs, stats.failures) == (6, 6)
    assert tracker.transactions == 1
    rows = await pg_pool.fetch("SELECT status, chunks_processed, chunks_failed FROM jobs")
    assert {tuple(r) for r in rows} == {("completed_with_errors", 4, 1)}
    assert await pg_pool.fetchval("SELECT count(*) FROM chunk_failures") == 6
    assert await redis_client.scard(keys.JOBS_DIRTY) == 0
    assert await redis_client.llen(keys.FAILURES_PENDING) == 0
    # nothing dirty: a flush does not open a transaction at all
    assert (await tracker.flush(pg_pool)).jobs == 0
    assert tracker.transactions == 1


class _RaceDb:
    """An asyncpg pool whose UPDATE first lets another outcome land in Redis (the race
    between the flusher's HGETALL and its cleanup of the dirty set)."""

    def __init__(self, pool: Any, before_update: Any) -> None:
        self.pool, self.before_update = pool, before_update

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            yield _RaceConn(conn, self.before_update)


class _RaceConn:
    def __init__(self, conn: Any, before_update: Any) -> None:
        self.conn, self.before_update = conn, before_update

    def transaction(self) -> Any:
        return self.conn.transaction()

    async def execute(self, sql: str, *args: Any) -> Any:
        if "UPDATE jobs" in sql and self.before_update is not None:
            hook, self.before_update = self.before_update, None
            await hook()
        return await self.conn.execute(sql, *args)


async def test_flush_keeps_a_job_dirty_when_it_changed_meanwhile(
    redis_client: Any, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 2)
    (a, b) = await _deliver(redis_client, 2)
    tracker = JobTracker(redis_client)
    await tracker.record([Outcome(a[0], a[1], a[2], PROCESSED)])

    async def second_outcome() -> None:
        await JobTracker(redis_client).record([Outcome(b[0], b[1], b[2], PROCESSED)])

    await tracker.flush(_RaceDb(pg_pool, second_outcome))
    # the flush wrote the state it read (1 chunk); the job stays dirty for the next flush
    row = await pg_pool.fetchrow("SELECT status, chunks_processed FROM jobs")
    assert tuple(row) == ("processing", 1)
    assert await redis_client.sismember(keys.JOBS_DIRTY, job_id) == 1
    await tracker.flush(pg_pool)
    row = await pg_pool.fetchrow("SELECT status, chunks_processed FROM jobs")
    assert tuple(row) == ("completed", 2)
    assert await redis_client.sismember(keys.JOBS_DIRTY, job_id) == 0


async def test_postgres_outage_delays_but_loses_nothing(
    redis_client: Any, pg_pool: Any, postgres_srv: PostgresServer, pg_database: str
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 3)
    delivered = await _deliver(redis_client, 3)
    tracker = JobTracker(redis_client)
    admin = await asyncpg.connect(postgres_srv.dsn("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{pg_database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", pg_database
        )
        for e, j, c in delivered:  # processing goes on while PostgreSQL is away
            await tracker.record([Outcome(e, j, c, PROCESSED)])
        with pytest.raises(PG_DOWN):
            await tracker.flush(pg_pool)
        assert await redis_client.sismember(keys.JOBS_DIRTY, job_id) == 1
        await admin.execute(f'ALTER DATABASE "{pg_database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    await tracker.flush(pg_pool)  # catches up
    row = await pg_pool.fetchrow("SELECT status, chunks_processed FROM jobs")
    assert tuple(row) == ("completed", 3)


async def test_read_falls_back_to_postgres_after_ttl(redis_client: Any, pg_pool: Any) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 1)
    ((e, j, c),) = await _deliver(redis_client, 1)
    tracker = JobTracker(redis_client, TrackerConfig(job_status_ttl_s=1))
    await tracker.record([Outcome(e, j, c, PROCESSED)])
    await tracker.flush(pg_pool)
    live = await fetch_job(redis_client, pg_pool, job_id)
    assert live is not None
    assert (live.source, live.status, live.percent_complete) == ("redis", "completed", 100.0)

    async def expired() -> bool:  # the 1 s TTL runs out
        return not await redis_client.exists(keys.job(job_id))

    await wait_for(expired, every_s=0.1)
    assert await redis_client.exists(keys.job_seen(job_id)) == 0
    old = await fetch_job(redis_client, pg_pool, job_id)
    assert old is not None
    assert (old.source, old.status, old.chunks_processed) == ("postgres", "completed", 1)
    assert old.finished_at == live.finished_at
    assert await fetch_job(redis_client, pg_pool, "6f1c8a43-0000-4000-8000-000000000000") is None
    assert await fetch_job(redis_client, pg_pool, "not-a-uuid") is None


async def test_a_flush_while_another_holds_the_flush_lock_is_skipped(
    redis_client: Any, pg_pool: Any, postgres_srv: PostgresServer, pg_database: str
) -> None:
    """Two flushers (two worker processes): while one is inside its flush (here held by a
    PostgreSQL row lock another session keeps), the other skips and writes nothing; once the
    first commits, the lock is free again and nothing is left dirty."""
    job_id = await enqueue_job(redis_client, pg_pool, 1)
    ((e, j, c),) = await _deliver(redis_client, 1)
    first, second = JobTracker(redis_client), JobTracker(redis_client)
    await first.record([Outcome(e, j, c, PROCESSED)])
    blocker = await asyncpg.connect(postgres_srv.dsn(pg_database))
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        running = asyncio.create_task(first.flush(pg_pool))

        async def first_holds_the_lock() -> bool:
            return bool(await redis_client.exists(keys.FLUSH_LOCK))

        await wait_for(first_holds_the_lock, what="the first flush took the lock")
        assert await second.flush(pg_pool) == FlushStats(skipped=True)
        assert second.transactions == 0
        await tx.rollback()
    finally:
        await blocker.close()
    assert (await asyncio.wait_for(running, 30)).jobs == 1
    assert await redis_client.exists(keys.FLUSH_LOCK) == 0
    assert await redis_client.scard(keys.JOBS_DIRTY) == 0
    assert (await second.flush(pg_pool)).skipped is False
    row = await pg_pool.fetchrow("SELECT status, chunks_processed FROM jobs")
    assert tuple(row) == ("completed", 1)
