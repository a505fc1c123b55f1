"""Fault 6: SIGTERM during a batch.

One worker process holds a batch of slow chunks (pool of 2, batch of 8). On SIGTERM it
exits 0 within its shutdown timeout, the chunks in flight finish (the engine saw them
finish, the job counted them), the unstarted rest stays pending for the group, and a
second consumer processes that rest: every chunk runs and counts exactly once.
"""

from __future__ import annotations

import signal
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

STOPS = scale(1, 5)  # SIGTERM rounds, one job each
CHUNKS = 12
SHUTDOWN_S = int(WORKER_ENV["SHIELD_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT_S"])


async def test_sigterm_finishes_in_flight_and_leaves_unstarted_pending(
    sut: Any, recorder: Any, pg_pool: Any, workers: Fleet
) -> None:
    for _ in range(STOPS):
        await recorder.flushdb()
        jobs = await submit(sut, pg_pool, 1, CHUNKS, lambda n: {"noop_sleep_s": 0.5})
        (job_id,) = jobs
        first = workers.spawn("1", pool_size="2", batch_size="8")

        async def two_started() -> bool:
            return len(await recorded(recorder, RECORDER_STARTED)) >= 2

        await wait_for(two_started, 60, "two chunks in flight")
        first.signal(signal.SIGTERM)
        assert await first.exited(SHUTDOWN_S + 15) == 0

        started = await recorded(recorder, RECORDER_STARTED)
        finished = await recorded(recorder, RECORDER_FINISHED)
        assert started == finished  # whatever was in flight finished; nothing was cut short
        h = await job_fields(sut, job_id)
        assert int(h["chunks_processed"]) == len(finished) < CHUNKS
        # acknowledged entries are deleted; the rest stays on the stream, and exactly what
        # this consumer had fetched but not finished stays pending in the group
        length, pending = await stream_state(sut)
        assert length == CHUNKS - len(finished)
        assert pending == first.left_pending() > 0

        second = workers.spawn("2")
        await wait_for(lambda j=jobs: all_terminal(sut, j), 60, "the rest processed")
        second.signal(signal.SIGTERM)
        assert await second.exited(SHUTDOWN_S + 15) == 0
        started = await recorded(recorder, RECORDER_STARTED)
        assert started == dict.fromkeys(recorded_keys(jobs), 1)  # each chunk ran exactly once
        h = await job_fields(sut, job_id)
        assert (h["status"], h["chunks_processed"]) == ("completed", str(CHUNKS))
        assert await stream_state(sut) == (0, 0)
    assert await dead_letters(sut) == []
