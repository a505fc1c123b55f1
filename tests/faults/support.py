"""Shared pieces of the fault suite: the chaos scale, worker processes, submissions, counts.

``SHIELD_CHAOS=long`` (``make chaos``) scales every count up; the default is the short form
that ``make test`` runs. The scale is read here, in the test code (it is not an app setting).
Every fault test uses a fixed seed, bounds its loops by count and a time limit, and asserts
on counts only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from redis.exceptions import ResponseError

from tests.support import chunks, procs
from tests.support.chunks import enqueue_job
from tests.support.servers import PostgresServer, RedisServer

LONG = os.environ.get("SHIELD_CHAOS", "short") == "long"
SEED = 9  # issue 9: every fault test draws from random.Random(SEED)
RECORDER_STARTED = "faults:started"
RECORDER_FINISHED = "faults:finished"


def scale(short: int, long: int) -> int:
    """``short`` in `make test`, ``long`` in `make chaos`."""
    return long if LONG else short


# Short test timings for the worker processes (SHIELD_WORKER_* overrides, settings.py).
WORKER_ENV = {
    "SHIELD_ENGINE": "noop",
    "SHIELD_WORKER_POOL_SIZE": "8",
    "SHIELD_WORKER_BATCH_SIZE": "16",
    "SHIELD_WORKER_RETRY_ATTEMPTS": "2",
    "SHIELD_WORKER_RETRY_BASE_DELAY_MS": "10",
    "SHIELD_WORKER_RETRY_MAX_DELAY_MS": "50",
    "SHIELD_WORKER_TIMEOUT_S": "60",
    "SHIELD_WORKER_HEALTH_CHECK_INTERVAL_S": "1",
    "SHIELD_WORKER_MAX_TASKS_PER_CHILD": "0",
    "SHIELD_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT_S": "20",
    "SHIELD_WORKER_RECLAIM_IDLE_MS": "1000",
    "SHIELD_WORKER_FLUSH_INTERVAL_MS": "200",
    "SHIELD_WORKER_METRICS_PORT": "0",
    "SHIELD_WORKER_HOST": "faults",
}


def worker_env(
    rendered: Path, redis: RedisServer, pg: PostgresServer, database: str, recorder: RedisServer
) -> dict[str, str]:
    """The fault suite's worker environment: WORKER_ENV, and the recorder's URL."""
    env = procs.worker_env(rendered, redis, pg, database, base=WORKER_ENV)
    env["FAULTS_RECORDER_URL"] = f"redis://:{recorder.password}@127.0.0.1:{recorder.port}/1"
    return env


def redis_client(server: RedisServer, db: int = 0) -> Any:
    from redis.asyncio import Redis

    return Redis(host="127.0.0.1", port=server.port, password=server.password, db=db,
                 decode_responses=True)  # fmt: skip


async def submit(
    redis: Any,
    db: Any,
    n_jobs: int,
    chunks_per_job: int,
    meta: Callable[[int], Mapping[str, Any]] | None = None,
) -> dict[str, int]:
    """Jobs made by the API's producer (tests/support/chunks.py): {job_id: chunks}."""
    jobs: dict[str, int] = {}
    for _ in range(n_jobs):
        jobs[await enqueue_job(redis, db, chunks_per_job, meta)] = chunks_per_job
    return jobs


async def job_fields(redis: Any, job_id: str) -> dict[str, str]:
    from shield_orchestrator import keys

    return dict(await redis.hgetall(keys.job(job_id)))


async def counted(redis: Any, jobs: Mapping[str, int]) -> int:
    """Chunks counted (processed + failed) over ``jobs``, from the job hashes."""
    total = 0
    for job_id in jobs:
        h = await job_fields(redis, job_id)
        total += int(h.get("chunks_processed", 0)) + int(h.get("chunks_failed", 0))
    return total


async def all_terminal(redis: Any, jobs: Mapping[str, int]) -> bool:
    for job_id in jobs:
        status = (await job_fields(redis, job_id)).get("status")
        if status not in {"completed", "completed_with_errors", "failed"}:
            return False
    return True


async def stream_state(redis: Any) -> tuple[int, int]:
    """(XLEN, pending entries) of the ingestion stream's group. A lost group (NOGROUP, as
    after a Redis restart that dropped it) fails the test: it is not "nothing pending"."""
    from shield_orchestrator import keys

    length = int(await redis.xlen(keys.ingestion_stream(keys.WORKSPACES[0])))
    try:
        pending = await redis.xpending(
            keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP
        )
    except ResponseError as e:
        if str(e).startswith("NOGROUP"):
            raise AssertionError(f"the consumer group is gone: {e}") from e
        raise
    return length, int(pending["pending"])


async def dead_letters(redis: Any) -> list[dict[str, str]]:
    from shield_orchestrator import keys

    return [dict(f) for _id, f in await redis.xrange(keys.DEAD_LETTER_STREAM)]


async def pg_counts(db: Any, jobs: Mapping[str, int]) -> dict[str, tuple[str, int, int]]:
    """{job_id: (status, chunks_processed, chunks_failed)} from PostgreSQL."""
    rows = await db.fetch(
        "SELECT job_id::text AS id, status, chunks_processed, chunks_failed FROM jobs "
        "WHERE job_id = ANY($1::uuid[])",
        list(jobs),
    )
    return {r["id"]: (r["status"], r["chunks_processed"], r["chunks_failed"]) for r in rows}


async def recorded(recorder: Any, key: str) -> dict[str, int]:
    return {k: int(v) for k, v in (await recorder.hgetall(key)).items()}


def recorded_keys(jobs: Mapping[str, int]) -> set[str]:
    """The recorder's field names of every submitted chunk: "<job_id>:<chunk_id>"."""
    return {f"{j}:{c}" for j, n in jobs.items() for c in chunks.chunk_ids(n)}
