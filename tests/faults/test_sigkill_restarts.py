"""Fault 1: worker processes SIGKILLed mid-ingestion and restarted (systemd-style).

N chunks (short form 2,000; `make chaos` 20,000) in several jobs across two worker processes.
A seeded killer SIGKILLs one of the two each time the counted total crosses the next mark
(marks spread over the run, so the kills land while work is in flight), and starts the same
instance again at once, as systemd's Restart=always does. Afterwards:

- every job is completed, its Redis counters and its PostgreSQL row equal the submitted set;
- every submitted chunk reached the engine and finished at least once (at-least-once), and
  counted exactly once (the seen set equals the submitted set, counters equal the totals);
- nothing is left on the stream or pending in the group; no dead letter (none injected).
"""

from __future__ import annotations

import random
import signal
from typing import Any

import pytest
from shield_orchestrator import keys

from tests.faults.support import (
    RECORDER_FINISHED,
    RECORDER_STARTED,
    SEED,
    all_terminal,
    counted,
    dead_letters,
    job_fields,
    pg_counts,
    recorded,
    recorded_keys,
    scale,
    stream_state,
    submit,
)
from tests.support.chunks import chunk_ids
from tests.support.pools import wait_for
from tests.support.procs import Fleet

pytestmark = pytest.mark.acceptance

N_JOBS = scale(4, 10)
CHUNKS_PER_JOB = scale(500, 2000)
KILLS = scale(4, 12)


async def test_sigkill_and_restart_loses_nothing_and_counts_once(
    sut: Any, recorder: Any, pg_pool: Any, workers: Fleet
) -> None:
    rng = random.Random(SEED)
    jobs = await submit(sut, pg_pool, N_JOBS, CHUNKS_PER_JOB)
    total = N_JOBS * CHUNKS_PER_JOB
    # a few ms per chunk, so that a kill finds chunks in flight
    running = {i: workers.spawn(i, noop_delay_ms="3") for i in ("1", "2")}
    marks = sorted(rng.sample(range(total // 10, total * 9 // 10), KILLS))
    kills = 0
    for mark in marks:
        await wait_for(lambda m=mark: _counted_at_least(sut, jobs, m), 180, f"{mark} counted")
        if await all_terminal(sut, jobs):
            break
        victim = rng.choice(sorted(running))
        running[victim].signal(signal.SIGKILL)
        assert await running[victim].exited(10) == -signal.SIGKILL
        running[victim] = workers.spawn(victim, noop_delay_ms="3")
        kills += 1
    await wait_for(lambda: all_terminal(sut, jobs), 300, "every job terminal")
    assert kills >= 1, "the run ended before the first kill: raise the counts"

    # Redis: every job completed, counted exactly once
    for job_id, n in jobs.items():
        h = await job_fields(sut, job_id)
        got = (h["status"], h["chunks_processed"], h["chunks_failed"])
        assert got == ("completed", str(n), "0")
        seen = await sut.smembers(keys.job_seen(job_id))
        assert seen == set(chunk_ids(n))
    assert await counted(sut, jobs) == total
    await wait_for(lambda: _drained(sut), 60, "stream and PEL empty")
    assert await dead_letters(sut) == []

    # the engine saw every chunk finish at least once; re-runs only of chunks a kill cut short
    finished = await recorded(recorder, RECORDER_FINISHED)
    started = await recorded(recorder, RECORDER_STARTED)
    assert set(finished) == recorded_keys(jobs)
    reruns = sum(started.values()) - total
    print(f"faults: {kills} SIGKILLs, {total} chunks, {reruns} engine re-runs")
    assert 0 <= reruns <= kills * 2 * (8 + 16)  # at most what two processes held per kill

    # PostgreSQL caught up with Redis (write-behind), same counts
    async def pg_caught_up() -> bool:
        rows = await pg_counts(pg_pool, jobs)
        return all(rows.get(j) == ("completed", n, 0) for j, n in jobs.items())

    await wait_for(pg_caught_up, 60, "PostgreSQL rows equal the submitted counts")


async def _counted_at_least(redis: Any, jobs: dict[str, int], mark: int) -> bool:
    return await counted(redis, jobs) >= mark


async def _drained(redis: Any) -> bool:
    return await stream_state(redis) == (0, 0)
