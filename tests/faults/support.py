"""Shared pieces of the fault suite: the chaos scale, worker processes, submissions, counts.

``SHIELD_CHAOS=long`` (``make chaos``) scales every count up; the default is the short form
that ``make test`` runs. The scale is read here, in the test code (it is not an app setting).
Every fault test uses a fixed seed, bounds its loops by count and a time limit, and asserts
on counts only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.servers import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[2]
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


@dataclass
class Worker:
    instance: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout_s)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Fleet:
    """Worker processes of one test (python -m tests.faults.recording_worker N)."""

    env: dict[str, str]
    log_dir: Path
    started: list[Worker] = field(default_factory=list)

    def spawn(self, instance: str, **overrides: str) -> Worker:
        env = {**self.env, **{f"SHIELD_WORKER_{k.upper()}": v for k, v in overrides.items()}}
        log_path = self.log_dir / f"worker-{instance}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.recording_worker", instance],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        worker = Worker(instance, proc, log_path)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in self.started)


def worker_env(
    rendered: Path, redis: RedisServer, pg: PostgresServer, database: str, recorder: RedisServer
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIELD_", "FAULTS_"))}
    env.update(WORKER_ENV)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(rendered), str(REPO)]),
        "SHIELD_REDIS_HOST": "127.0.0.1", "SHIELD_REDIS_PORT": str(redis.port),
        "SHIELD_REDIS_DB": "0", "SHIELD_REDIS_PASSWORD": redis.password,
        "SHIELD_POSTGRES_HOST": "127.0.0.1", "SHIELD_POSTGRES_PORT": str(pg.port),
        "SHIELD_POSTGRES_DB": database, "SHIELD_POSTGRES_USER": pg.user,
        "SHIELD_POSTGRES_PASSWORD": pg.password,
        "FAULTS_RECORDER_URL": f"redis://:{recorder.password}@127.0.0.1:{recorder.port}/1",
    })  # fmt: skip
    return env


@contextmanager
def fleet(env: Mapping[str, str], log_dir: Path) -> Iterator[Fleet]:
    """A Fleet whose processes are all ended by PID when the block ends."""
    f = Fleet(dict(env), log_dir)
    try:
        yield f
    finally:
        for w in f.started:
            if w.alive():
                w.kill(signal.SIGKILL)
                w.wait(10)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], limit_s: float, what: str, every_s: float = 0.05
) -> None:
    """Poll ``condition``; the limit only bounds a broken run (AssertionError naming ``what``)."""
    deadline = time.monotonic() + limit_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {limit_s:.0f}s")
        await asyncio.sleep(every_s)


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
    """Jobs the way the API makes them (PostgreSQL row, then one MULTI): {job_id: chunks}."""
    from tests.support.chunks import enqueue_job, insert_job_row

    jobs: dict[str, int] = {}
    for _ in range(n_jobs):
        import uuid

        job_id = str(uuid.uuid4())
        await insert_job_row(db, job_id, chunks_per_job)
        await enqueue_job(redis, chunks_per_job, meta, job_id=job_id)
        jobs[job_id] = chunks_per_job
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
    """(XLEN, pending entries) of the ingestion stream's group."""
    from shield_orchestrator import keys

    length = int(await redis.xlen(keys.INGESTION_STREAM))
    try:
        pending = await redis.xpending(keys.INGESTION_STREAM, keys.CONSUMER_GROUP)
    except Exception:
        return length, 0
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


def chunk_ids(jobs: Mapping[str, int]) -> set[str]:
    """The recorder's field names of every submitted chunk: "<job_id>:<chunk_id>"."""
    return {f"{j}:c{i:06d}" for j, n in jobs.items() for i in range(n)}
