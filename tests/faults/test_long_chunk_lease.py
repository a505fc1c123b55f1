"""Fault 2: a chunk that runs three times longer than the reclaim idle timeout, while other
consumers poll (and would XAUTOCLAIM it if its owner stopped renewing the lease).

Two worker processes; one long chunk (3 x reclaim_idle) among short ones in each round.
The live owner renews its lease (XCLAIM JUSTID), so the engine runs the long chunk exactly
once: the recorder counts one start and one finish, the job completes, no dead letter.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.support import (
    RECORDER_FINISHED,
    RECORDER_STARTED,
    WORKER_ENV,
    all_terminal,
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

pytestmark = pytest.mark.acceptance

ROUNDS = scale(1, 4)  # jobs, each with one long chunk
SHORT_CHUNKS = scale(40, 400)
# 2 s, not the suite's 1 s: a lease renewal (every idle/3) delayed by a busy shared machine
# must not look like a dead owner; the chunk still runs three reclaim timeouts.
RECLAIM_IDLE_MS = 2 * int(WORKER_ENV["SHIELD_WORKER_RECLAIM_IDLE_MS"])
RECLAIM_IDLE_S = RECLAIM_IDLE_MS / 1000


async def test_long_chunk_is_processed_exactly_once_while_others_poll(
    sut: Any, recorder: Any, pg_pool: Any, workers: Fleet
) -> None:
    chunks = SHORT_CHUNKS + 1
    long_s = 3 * RECLAIM_IDLE_S

    def meta(n: int) -> dict[str, Any]:  # chunk c000001 is the long one
        return {"noop_sleep_s": long_s} if n == 1 else {"noop_sleep_s": 0.01}

    jobs = await submit(sut, pg_pool, ROUNDS, chunks, meta)
    for instance in ("1", "2"):
        workers.spawn(instance, reclaim_idle_ms=str(RECLAIM_IDLE_MS))
    await wait_for(lambda: all_terminal(sut, jobs), 60 + 10 * ROUNDS * long_s, "jobs done")

    started = await recorded(recorder, RECORDER_STARTED)
    finished = await recorded(recorder, RECORDER_FINISHED)
    long_ones = {f"{j}:c000001" for j in jobs}
    assert {k: started[k] for k in long_ones} == dict.fromkeys(long_ones, 1)
    assert {k: finished[k] for k in long_ones} == dict.fromkeys(long_ones, 1)
    assert set(finished) == recorded_keys(jobs)
    assert sum(started.values()) == len(recorded_keys(jobs))  # no chunk ran twice
    for job_id in jobs:
        h = await job_fields(sut, job_id)
        assert (h["status"], h["chunks_processed"]) == ("completed", str(chunks))
    assert await stream_state(sut) == (0, 0)
    assert await dead_letters(sut) == []
    # both consumers were alive and polling the whole time
    assert all(w.running() for w in workers.started)
