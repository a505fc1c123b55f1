"""Regression tests, one per seed defect listed in DESIGN.md ("Seed defects not to repeat").

Each docstring says the bug (in the user's seed code), the fix, and how the test reproduces it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.services import heartbeat, redis_streams
from shield_orchestrator.services.job_tracker import PROCESSED, JobTracker, Outcome

from tests.support.chunks import dead_letters, enqueue_job, job_hash
from tests.support.pools import metric, running_pool, wait_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


async def _done(redis: Any, job_id: str) -> bool:
    status = (await job_hash(redis, job_id)).get("status")
    return status in {"completed", "completed_with_errors", "failed"}


async def test_seed_defect_task_errors_swallowed_and_left_pending(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """Bug: the seed pool caught a task's exception with ``# TODO: Handle retry logic`` and
    never acknowledged the message, so it stayed pending forever.
    Fix: the slot retries with backoff, then dead-letters and acknowledges the entry.
    Reproduce: a chunk whose engine call always fails; afterwards nothing is pending."""
    job_id = await enqueue_job(redis_client, pg_pool, 1, meta=lambda n: {"noop_fail": "always"})
    async with running_pool(redis_srv, retry_attempts=2):
        await wait_for(lambda: _done(redis_client, job_id))
    state = await redis_streams.group_state(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    assert state is not None
    assert state.pending == 0
    (dl,) = await dead_letters(redis_client)
    assert dl["attempts"] == "3"


async def test_seed_defect_one_chunk_error_fails_the_whole_job(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """Bug: the seed marked the whole job failed when one chunk raised.
    Fix: a chunk failure is counted per chunk; the job ends completed_with_errors.
    Reproduce: 5 chunks, one permanently failing."""
    bad = {4: {"noop_fail": "permanent"}}
    job_id = await enqueue_job(redis_client, pg_pool, 5, meta=lambda n: bad.get(n, {}))
    async with running_pool(redis_srv):
        await wait_for(lambda: _done(redis_client, job_id))
    h = await job_hash(redis_client, job_id)
    assert (h["status"], h["chunks_processed"], h["chunks_failed"]) == (
        "completed_with_errors",
        "4",
        "1",
    )


async def test_seed_defect_create_task_from_signal_handler(
    redis_client: Any, redis_srv: RedisServer
) -> None:
    """Bug: the seed's signal handler called ``asyncio.create_task(self.stop())`` (a task
    nobody awaits, created from a handler). Fix: the handler (``request_stop``) only sets an
    event; the pool's own run() performs the shutdown sequence.
    Reproduce: install it with loop.add_signal_handler, send SIGTERM to this process; inside
    the handler's own callback, the tasks of the loop before and after request_stop ran are
    the same, and it returned nothing to await."""
    seen: list[tuple[set[Any], Any, set[Any]]] = []

    def on_sigterm() -> None:
        before = set(asyncio.all_tasks())
        returned = pool.request_stop("SIGTERM")
        seen.append((before, returned, set(asyncio.all_tasks())))

    async with running_pool(redis_srv, consumer="sig:1") as pool:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            await wait_for(lambda: _registered(redis_client))
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_for(lambda: pool.stop_reason == "SIGTERM")
            ((before, returned, after),) = seen
            assert returned is None
            assert after == before  # the handler created no task
        finally:
            loop.remove_signal_handler(signal.SIGTERM)


async def _registered(redis: Any) -> bool:
    return bool(await redis.exists(keys.worker("sig:1")))


async def test_seed_defect_racy_completion_read_after_increment(
    redis_client: Any, pg_pool: Any
) -> None:
    """Bug: the seed incremented the counter, then read it back in another command to decide
    completion: two workers could both (or neither) see the last chunk.
    Fix: one Lua call increments, compares with the total and sets the terminal status.
    Reproduce: 64 chunks recorded by 8 concurrent trackers: exactly one sees completion."""
    job_id = await enqueue_job(redis_client, pg_pool, 64)
    await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    entries = await redis_streams.read_group(
        redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "t:1", 64, None
    )
    trackers = [JobTracker(redis_client) for _ in range(8)]
    results = await asyncio.gather(
        *(
            t.record([Outcome(e, f["job_id"], f["chunk_id"], PROCESSED)])
            for k, t in enumerate(trackers)
            for e, f in entries[k::8]
        )
    )
    flat = [r for rs in results for r in rs]
    assert flat.count("completed") == 1
    assert (await job_hash(redis_client, job_id))["chunks_processed"] == "64"


async def test_seed_defect_three_postgres_transactions_per_chunk(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """Bug: the seed opened three PostgreSQL transactions per chunk.
    Fix: write-behind, one ``UPDATE ... FROM unnest()`` transaction per flush interval.
    Reproduce: a statement trigger logs the transaction id of every UPDATE of ``jobs``;
    300 chunks of 3 jobs are processed and flushed."""
    await pg_pool.execute("""
        CREATE TABLE tx_log (txid bigint NOT NULL);
        CREATE FUNCTION log_tx() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO tx_log VALUES (txid_current()); RETURN NULL; END $$;
        CREATE TRIGGER jobs_tx AFTER UPDATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION log_tx();
    """)
    jobs = [await enqueue_job(redis_client, pg_pool, 100) for _ in range(3)]
    async with running_pool(redis_srv, db=pg_pool, batch_size=50, pool_size=16) as pool:
        for j in jobs:
            await wait_for(lambda j=j: _done(redis_client, j))
    statuses = await pg_pool.fetch("SELECT status, chunks_processed FROM jobs")
    assert {tuple(r) for r in statuses} == {("completed", 100)}
    transactions, statements = await pg_pool.fetchrow(
        "SELECT count(DISTINCT txid), count(*) FROM tx_log"
    )
    # every UPDATE of jobs came from one of the tracker's flushes (one per flush interval),
    # each a single statement over all its jobs; the seed needed 3 per chunk (900)
    assert transactions == statements == pool.tracker.transactions
    assert 1 <= transactions < 300


async def test_seed_defect_processing_rate_reported_as_constant_zero(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """Bug: the seed's health report returned ``processing_rate: 0.0``, a constant.
    Fix: a sliding-window meter of completed chunks, published in the heartbeat.
    Reproduce: process 40 chunks; the heartbeat's rate is positive and matches the count."""
    job_id = await enqueue_job(redis_client, pg_pool, 40)
    async with running_pool(redis_srv, consumer="rate:1") as pool:
        await wait_for(lambda: _done(redis_client, job_id))

        async def beat_rate() -> float:
            beats = [b for b in await heartbeat.read_workers(redis_client) if b.processed == 40]
            return beats[0].rate if beats else 0.0

        await wait_for(lambda: _positive(beat_rate()))
        assert pool.rate.total == 40


async def _positive(value: Any) -> bool:
    return (await value) > 0


async def test_seed_defect_no_reclaim_of_dead_consumer(
    redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """Bug: the seed had no reclaim: a crashed consumer's pending messages stayed forever.
    Fix: XAUTOCLAIM after reclaim_idle_ms by the survivors (supervised reclaim loop).
    Reproduce: a consumer takes 4 entries and vanishes; another pool finishes the job."""
    job_id = await enqueue_job(redis_client, pg_pool, 4)
    await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    await redis_streams.read_group(
        redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "gone:1", 4, None
    )
    async with running_pool(
        redis_srv, NoopEngine(), consumer="alive:2", reclaim_idle_ms=200
    ) as pool:
        await wait_for(lambda: _done(redis_client, job_id))
        assert metric(pool, "shield_worker_entries_reclaimed_total") == 4
    assert (await job_hash(redis_client, job_id))["chunks_processed"] == "4"
    state = await redis_streams.group_state(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    assert state is not None
    assert state.pending == 0


def test_seed_defect_validate_with_or_echo_passes_failed_checks() -> None:
    """Bug: the seed validated rendered Python with ``... || echo`` so a failed check passed.
    Fix: every Python template task validates with ``py_compile`` and nothing masks a failure.
    Reproduce: read the roles' task files: no ``|| echo`` / ``|| true`` anywhere, and each
    template task rendering a ``.py`` has ``validate: ... -m py_compile %s``."""
    task_files = sorted((REPO / "roles").glob("*/tasks/*.yml"))
    assert task_files
    masked = re.compile(r"\|\|\s*(echo|true|:)\b")
    for path in task_files:
        code = "\n".join(
            ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")
        )
        assert not masked.search(code), f"{path}: a check's failure is masked"
    render_tasks = [p for p in task_files if p.name == "render_app.yml"]
    assert render_tasks
    for path in render_tasks:
        text = path.read_text()
        for block in text.split("- name:")[1:]:
            if "ansible.builtin.template:" in block and ".j2" in block:
                assert re.search(r"validate: .*-m py_compile %s", block), f"{path}: {block[:60]}"
