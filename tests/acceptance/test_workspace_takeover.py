"""A workspace's owner SIGKILLed mid-job: a standby process takes the workspace over.

Two real worker processes (``shield_orchestrator.workers`` with the real offline LightRAG
engine: tests/support/workspace_engines.py, 3-second leases) serve one workspace: one owns it,
the other stands by. The owner is SIGKILLed while the job is half done; its lease expires, the
standby takes the workspace, first makes the dead owner's pending entries its own, and finishes
the job. Nothing is lost, nothing is counted twice, nothing is dead-lettered.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services.heartbeat import read_workers

from tests.support.chunks import enqueue_job, job_hash
from tests.support.pools import wait_for
from tests.support.procs import FAST_ENV, fleet, worker_env
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.acceptance

CHUNKS = 400
WORKSPACE = keys.WORKSPACES[0]


async def _owner(redis: Any) -> str | None:
    owners = [b.consumer for b in await read_workers(redis) if WORKSPACE in b.workspaces]
    assert len(owners) <= 1, f"two owners at once: {owners}"
    return owners[0] if owners else None


async def test_the_standby_takes_over_a_killed_owners_workspace_and_finishes_the_job(
    rendered_root: Path,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    redis_client: Any,
    pg_pool: Any,
    tmp_path: Path,
) -> None:
    base = FAST_ENV | {"SHIELD_ENGINE": "offline", "TEST_LIGHTRAG_WORKDIR": str(tmp_path / "rag")}
    env = worker_env(rendered_root, redis_srv, postgres_srv, pg_database, base)
    with fleet(env, tmp_path, module="tests.support.workspace_engines") as workers:
        procs = {f"acceptance:{i}": workers.spawn(i) for i in ("1", "2")}
        await wait_for(lambda: _owner(redis_client), 60, "an owner", every_s=0.2)
        first = await _owner(redis_client)
        assert first in procs
        job_id = await enqueue_job(redis_client, pg_pool, CHUNKS)

        async def half_done() -> bool:
            return int((await job_hash(redis_client, job_id)).get("chunks_processed", 0)) >= 20

        await wait_for(half_done, 120, "the owner is processing the job", every_s=0.05)
        procs[first].signal(signal.SIGKILL)
        assert await procs[first].exited(10) == -signal.SIGKILL
        assert (await job_hash(redis_client, job_id))["status"] == "processing"

        async def completed() -> bool:
            return (await job_hash(redis_client, job_id)).get("status") == "completed"

        await wait_for(completed, 180, "the job completed after the hand-over", every_s=0.2)
        survivor = next(p for c, p in procs.items() if c != first)
        log = survivor.log()
    job = await job_hash(redis_client, job_id)
    assert (job["chunks_processed"], job["chunks_failed"]) == (str(CHUNKS), "0")
    assert await redis_client.scard(keys.job_seen(job_id)) == CHUNKS
    stream = keys.ingestion_stream(WORKSPACE)
    assert (await redis_client.xpending(stream, keys.CONSUMER_GROUP))["pending"] == 0
    assert await redis_client.xlen(stream) == 0
    assert await redis_client.xlen(keys.DEAD_LETTER_STREAM) == 0
    assert "action=workspace_owned" in log
    assert "action=workspace_take_over" in log
