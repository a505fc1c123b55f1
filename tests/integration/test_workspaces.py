"""Workspaces as the unit of ownership (workers/workspaces.py) on a real Redis, in-process.

Two worker processes' WorkspacePools share four workspaces; their engines are the real offline
LightRAG engine (file storages in a temporary directory), which takes each workspace's Redis
lease at start. Checked: each workspace has one owner and the two processes split them 2/2; the
API's producer puts each job on its workspace's stream, and only that workspace's engine stores
it; a process that stops hands its workspaces to the other, which finishes their work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chunks import enqueue_job, job_hash
from tests.support.pools import pool_config, redis_for, wait_for
from tests.support.servers import RedisServer
from tests.support.workspace_engines import offline_factory

pytestmark = pytest.mark.integration

WORKSPACES = ("w1", "w2", "w3", "w4")


@contextlib.asynccontextmanager
async def process(
    redis_srv: RedisServer, settings: Any, workdir: Path, consumer: str
) -> AsyncIterator[Any]:
    """A started WorkspacePools (what one worker process runs), stopped on exit."""
    import dataclasses

    from shield_orchestrator.workers.workspaces import WorkspacePools

    redis = redis_for(redis_srv)
    create = offline_factory(str(workdir))
    offline = dataclasses.replace(settings, engine="offline")
    pools = WorkspacePools(
        redis,
        lambda ws: create(offline, ws, 0),
        pool_config(health_check_interval_s=0.3),
        consumer,
        engine_name="offline",
        single_writer=True,
        workspaces=WORKSPACES,
        per_process=4,
    )
    task = asyncio.create_task(pools.run(), name=f"process-{consumer}")
    try:
        yield pools
    finally:
        pools.request_stop("test")
        await asyncio.wait_for(task, 60)
        await redis.aclose()


def stored_jobs(workdir: Path, workspace: str) -> str:
    """The workspace's LightRAG doc-status file (file storages), as text ('' before any)."""
    path = workdir / workspace / "kv_store_doc_status.json"
    return path.read_text() if path.exists() else ""


async def test_processes_split_the_workspaces_and_each_job_reaches_only_its_own(
    redis_srv: RedisServer, redis_client: Any, pg_pool: Any, worker_settings: Any, tmp_path: Path
) -> None:
    async with process(redis_srv, worker_settings, tmp_path, "a:1") as a:
        await wait_for(lambda: len(a.pools) == 4, 60, "the only process owns all four")
        async with process(redis_srv, worker_settings, tmp_path, "b:1") as b:
            await wait_for(lambda: len(a.pools) == 2 and len(b.pools) == 2, 60, "a 2/2 split")
            assert set(a.pools).isdisjoint(b.pools)
            jobs = {
                ws: await enqueue_job(redis_client, pg_pool, 5, workspace=ws) for ws in WORKSPACES
            }

            async def all_completed() -> bool:
                states = [(await job_hash(redis_client, j)).get("status") for j in jobs.values()]
                return states == ["completed"] * len(jobs)

            await wait_for(all_completed, 90, "every workspace's job completed")
            for ws, job_id in jobs.items():
                assert (await job_hash(redis_client, job_id))["chunks_processed"] == "5"
                mine = stored_jobs(tmp_path, ws)
                others = [j for w, j in jobs.items() if w != ws]
                assert job_id in mine, f"{ws}'s job is not in its own LightRAG storage"
                assert not any(j in mine for j in others), f"{ws} stored another workspace's job"
            owners = {ws: "a:1" for ws in a.pools} | {ws: "b:1" for ws in b.pools}
            beats = await _heartbeats(redis_client)
            assert {ws: c for c, spaces in beats.items() for ws in spaces} == owners
        # b stopped: its workspaces' leases are free, a takes them over and serves new work
        await wait_for(lambda: len(a.pools) == 4, 60, "a owns all four again")
        later = {ws: await enqueue_job(redis_client, pg_pool, 3, workspace=ws) for ws in WORKSPACES}

        async def later_completed() -> bool:
            states = [(await job_hash(redis_client, j)).get("status") for j in later.values()]
            return states == ["completed"] * len(later)

        await wait_for(later_completed, 90, "the jobs after the hand-over completed")


async def test_a_workspace_without_a_free_process_waits_and_loses_nothing(
    redis_srv: RedisServer, redis_client: Any, pg_pool: Any, worker_settings: Any, tmp_path: Path
) -> None:
    import dataclasses

    from shield_orchestrator.services.heartbeat import read_workers
    from shield_orchestrator.services.queue_stats import queue_stats
    from shield_orchestrator.services.workspaces import warnings, workspace_states
    from shield_orchestrator.workers.workspaces import WorkspacePools

    redis = redis_for(redis_srv)
    create = offline_factory(str(tmp_path))
    offline = dataclasses.replace(worker_settings, engine="offline")
    one = WorkspacePools(redis, lambda ws: create(offline, ws, 0),
                         pool_config(health_check_interval_s=0.3), "small:1",
                         engine_name="offline", single_writer=True, workspaces=WORKSPACES,
                         per_process=1)  # fmt: skip
    task = asyncio.create_task(one.run())
    try:
        await wait_for(lambda: len(one.pools) == 1, 60, "it owns one workspace")
        owned = next(iter(one.pools))
        waiting = next(ws for ws in WORKSPACES if ws != owned)
        job_id = await enqueue_job(redis_client, pg_pool, 4, workspace=waiting)
        await asyncio.sleep(1.0)  # several ownership periods: it must not take a second one
        assert len(one.pools) == 1
        stats = await queue_stats(redis_client, WORKSPACES)
        states = workspace_states(stats, await read_workers(redis_client), 0.0)
        (note,) = warnings(states)
        assert repr(waiting) in note
        assert "4 chunks wait" in note
        assert (await job_hash(redis_client, job_id))["status"] == "queued"
        assert await redis_client.xlen(f"{_stream(waiting)}") == 4  # nothing dropped
    finally:
        one.request_stop("test")
        await asyncio.wait_for(task, 60)
        await redis.aclose()


def _stream(workspace: str) -> str:
    from shield_orchestrator import keys

    return keys.ingestion_stream(workspace)


async def _heartbeats(redis: Any) -> dict[str, list[str]]:
    from shield_orchestrator.services.heartbeat import read_workers

    return {b.consumer: sorted(b.workspaces) for b in await read_workers(redis)}


async def test_entries_of_the_old_single_stream_move_to_their_workspaces(
    redis_srv: RedisServer, redis_client: Any, pg_pool: Any, worker_settings: Any
) -> None:
    """An upgrade loses nothing queued: what the old release's API left on the one stream."""
    from shield_orchestrator import keys
    from shield_orchestrator.engines.noop import NoopEngine
    from shield_orchestrator.workers.workspaces import WorkspacePools

    first = await enqueue_job(redis_client, pg_pool, 3, workspace="w2")
    second = await enqueue_job(redis_client, pg_pool, 2, workspace="w4")
    for ws in ("w2", "w4"):  # as the old release queued them: the same entries, on one stream
        for _id, fields in await redis_client.xrange(_stream(ws)):
            await redis_client.xadd(keys.INGESTION_STREAM, fields)
        await redis_client.delete(_stream(ws))
    redis = redis_for(redis_srv)
    pools = WorkspacePools(redis, lambda ws: NoopEngine(), pool_config(), "upgraded:1",
                           engine_name="noop", single_writer=False,
                           workspaces=WORKSPACES)  # fmt: skip
    task = asyncio.create_task(pools.run())
    try:

        async def done() -> bool:
            states = [(await job_hash(redis_client, j)).get("status") for j in (first, second)]
            return states == ["completed", "completed"]

        await wait_for(done, 30, "the moved entries processed")
        assert await redis_client.exists(keys.INGESTION_STREAM) == 0
    finally:
        pools.request_stop("test")
        await asyncio.wait_for(task, 30)
        await redis.aclose()
