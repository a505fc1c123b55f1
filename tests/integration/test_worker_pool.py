"""WorkerPool against a real redis-server (and PostgreSQL for the write-behind).

Consumption, effectively-once progress, retries, dead letters, malformed and poison
messages, timeouts, max tasks per child, graceful stop, bounded streams, heartbeats, metrics.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.services import heartbeat, redis_streams

from tests.support.chunks import (
    chunk_ids,
    dead_letters,
    enqueue_job,
    events_of,
    job_hash,
    progress_chunk_ids,
)
from tests.support.pools import metric, running_pool, wait_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "completed_with_errors", "failed"}


def _status(h: dict[str, str]) -> str:
    return h.get("status", "")


async def _finished(redis: Any, job_id: str) -> bool:
    return _status(await job_hash(redis, job_id)) in TERMINAL


async def test_processes_a_job_once_and_leaves_the_stream_empty(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 25)
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, db=pg_pool, batch_size=4, pool_size=3) as pool:
        await wait_for(lambda: _finished(redis_client, job_id))
        h = await job_hash(redis_client, job_id)
        assert h["status"] == "completed"
        assert (h["chunks_processed"], h["chunks_failed"]) == ("25", "0")
        assert len(engine.calls) == 25
        assert set(engine.calls.values()) == {1}
        assert engine.max_in_flight <= pool.slots
        # acknowledged entries are deleted: the stream and the PEL are empty
        assert await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0])) == 0
        state = await redis_streams.group_state(
            redis_client, keys.ingestion_stream(keys.WORKSPACES[0])
        )
        assert state is not None
        assert state.pending == 0
        # the job hash and the seen set expire job_status_ttl after the end
        assert 0 < await redis_client.ttl(keys.job(job_id)) <= pool.config.job_status_ttl_s
        assert 0 < await redis_client.ttl(keys.job_seen(job_id)) <= pool.config.job_status_ttl_s

        async def row_done() -> bool:
            row = await pg_pool.fetchrow("SELECT * FROM jobs WHERE job_id = $1", job_id)
            return row["status"] == "completed"

        await wait_for(row_done)
    events = await events_of(redis_client, job_id)
    types = [e.type for e in events]
    assert types[:2] == ["ingestion.queued", "ingestion.started"]
    assert set(types[2:-1]) == {"ingestion.progress"}  # one per job per recorded batch
    assert types[-1] == "ingestion.completed"
    assert sorted(progress_chunk_ids(events)) == chunk_ids(25)
    counts = [e.data["chunks_processed"] for e in events if e.type == "ingestion.progress"]
    assert counts == sorted(counts)
    assert counts[-1] == 25
    row = await pg_pool.fetchrow("SELECT * FROM jobs WHERE job_id = $1", job_id)
    assert (row["chunks_processed"], row["chunks_failed"]) == (25, 0)
    assert row["started_at"] is not None
    assert row["finished_at"] is not None


async def test_group_is_created_and_existing_group_is_fine(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    assert (
        await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
        is True
    )
    assert (
        await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
        is False
    )
    job_id = await enqueue_job(redis_client, pg_pool, 3)
    async with running_pool(redis_srv):
        await wait_for(lambda: _finished(redis_client, job_id))


async def test_retry_then_success_counts_attempts(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(
        redis_client, pg_pool, 2, meta=lambda n: {"noop_fail": "times:2"} if n == 2 else {}
    )
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, retry_attempts=3) as pool:
        await wait_for(lambda: _finished(redis_client, job_id))
        assert engine.calls[(job_id, "c000002")] == 3
        assert metric(pool, "shield_worker_chunks_retried_total") == 2
    assert _status(await job_hash(redis_client, job_id)) == "completed"
    assert await dead_letters(redis_client) == []


async def test_one_bad_chunk_does_not_fail_the_job(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(
        redis_client, pg_pool, 4, meta=lambda n: {"noop_fail": "always"} if n == 2 else {}
    )
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, db=pg_pool, retry_attempts=2) as pool:
        await wait_for(lambda: _finished(redis_client, job_id))
        h = await job_hash(redis_client, job_id)
        assert h["status"] == "completed_with_errors"
        assert (h["chunks_processed"], h["chunks_failed"]) == ("3", "1")
        assert engine.calls[(job_id, "c000002")] == 3  # 1 try + retry_attempts
        (dl,) = await dead_letters(redis_client)
        assert (dl["job_id"], dl["chunk_id"], dl["attempts"]) == (job_id, "c000002", "3")
        assert "ChunkError" in dl["error"]

        async def failure_row() -> bool:
            return await pg_pool.fetchval("SELECT count(*) FROM chunk_failures") == 1

        await wait_for(failure_row)
        assert metric(pool, "shield_worker_chunks_dead_lettered_total") == 1
    failed = [
        e for e in await events_of(redis_client, job_id) if e.type == "ingestion.chunk_failed"
    ]
    assert [e.data["chunk_id"] for e in failed] == ["c000002"]
    row = await pg_pool.fetchrow("SELECT * FROM chunk_failures")
    assert (str(row["job_id"]), row["chunk_id"], row["attempts"]) == (job_id, "c000002", 3)


async def test_every_chunk_failing_fails_the_job(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 2, meta=lambda n: {"noop_fail": "permanent"})
    engine = NoopEngine()
    async with running_pool(redis_srv, engine):
        await wait_for(lambda: _finished(redis_client, job_id))
    assert _status(await job_hash(redis_client, job_id)) == "failed"
    assert sum(engine.calls.values()) == 2  # permanent errors are not retried
    types = [e.type for e in await events_of(redis_client, job_id)]
    assert types.count("ingestion.chunk_failed") == 2
    assert types[-1] == "ingestion.failed"


async def test_malformed_messages_go_straight_to_dead_letter(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 1)
    stream = keys.ingestion_stream(keys.WORKSPACES[0])
    # three more entries name the job, all bad: they count as its failed chunks
    await redis_client.hset(keys.job(job_id), "chunks_total", 4)
    other_job = "00000000-0000-4000-8000-000000000000"

    def entry(chunk_id: str, body: str, kind: str = "ingest_chunk", job: str = job_id) -> Any:
        return {"v": "1", "kind": kind, "job_id": job, "chunk_id": chunk_id, "body": body}

    await redis_client.xadd(stream, entry("c000002", "{not json"))
    await redis_client.xadd(stream, entry("c000003", '{"text": ""}'))
    await redis_client.xadd(stream, {"garbage": "x"})
    await redis_client.xadd(stream, entry("c000009", "{}", kind="resize_image"))
    await redis_client.xadd(stream, entry("c000001", '{"text": "x"}', job=other_job))
    engine = NoopEngine()
    async with running_pool(redis_srv, engine) as pool:
        await wait_for(lambda: _finished(redis_client, job_id))

        async def all_settled() -> bool:
            return await redis_client.xlen(stream) == 0

        await wait_for(all_settled)
        assert pool.processed == 1
    h = await job_hash(redis_client, job_id)
    assert (h["status"], h["chunks_processed"], h["chunks_failed"]) == (
        "completed_with_errors",
        "1",
        "3",
    )
    assert list(engine.calls) == [(job_id, "c000001")]  # no malformed entry reached the engine
    errors = sorted(d["error"] for d in await dead_letters(redis_client))
    assert len(errors) == 5
    assert any("not JSON" in e for e in errors)
    assert any("unknown job" in e for e in errors)
    assert any("unknown message kind" in e for e in errors)


async def test_timeout_and_crash_are_retried_then_dead_lettered_pool_survives(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    meta = {1: {"noop_sleep_s": 5}, 2: {"noop_fail": "crash"}}
    job_id = await enqueue_job(redis_client, pg_pool, 3, meta=lambda n: meta.get(n, {}))
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, timeout_s=0.2, retry_attempts=1):
        await wait_for(lambda: _finished(redis_client, job_id))
    h = await job_hash(redis_client, job_id)
    assert (h["chunks_processed"], h["chunks_failed"]) == ("1", "2")
    errors = sorted(d["error"] for d in await dead_letters(redis_client))
    assert "ChunkTimeout" in errors[0] or "ChunkTimeout" in errors[1]
    assert any("RuntimeError" in e for e in errors)


async def test_engine_overloaded_does_not_spend_an_attempt(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(
        redis_client, pg_pool, 1, meta=lambda n: {"noop_fail": "overloaded:3"}
    )
    engine = NoopEngine()
    async with running_pool(redis_srv, engine, retry_attempts=0) as pool:
        await wait_for(lambda: _finished(redis_client, job_id))
        assert metric(pool, "shield_worker_engine_overloaded_total") == 3
    assert _status(await job_hash(redis_client, job_id)) == "completed"
    assert engine.calls[(job_id, "c000001")] == 4


async def test_max_tasks_per_child_stops_after_n(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    job_id = await enqueue_job(redis_client, pg_pool, 12)
    async with running_pool(redis_srv, max_tasks_per_child=5, batch_size=2) as pool:
        await wait_for(lambda: pool.stop_reason == "max_tasks")
    assert pool.processed == 5
    assert (await job_hash(redis_client, job_id))["chunks_processed"] == "5"
    assert (
        await redis_client.xlen(keys.ingestion_stream(keys.WORKSPACES[0])) == 7
    )  # the rest is still queued


async def test_heartbeat_rate_and_metrics_endpoint(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    from tests.support.servers import free_port

    port = free_port()
    job_id = await enqueue_job(redis_client, pg_pool, 30)
    async with running_pool(redis_srv, metrics_port=port, consumer="hb:1") as pool:
        await wait_for(lambda: _finished(redis_client, job_id))

        async def beat_has_rate() -> bool:
            beats = await heartbeat.read_workers(redis_client)
            return any(b.consumer == "hb:1" and b.processed == 30 and b.rate > 0 for b in beats)

        await wait_for(beat_has_rate)
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert "shield_worker_chunks_processed_total 30.0" in r.text
        assert "shield_worker_chunk_duration_seconds_bucket" in r.text
        assert pool.rate.rate() > 0
    assert await heartbeat.read_workers(redis_client) == []  # a clean stop removes it
    types = [e.type for e in await events_of(redis_client, "")]
    assert types == ["worker.started", "worker.stopped"]
