"""The job status machine, as the progress Lua (services/job_tracker.py) really runs it.

The table below is the oracle (the Python copy of the machine that no production code ran
is gone): for each row, a fresh job of ``total`` chunks from the API's producer, the outcomes
of ``before`` recorded through ``JobTracker.record``, then one more outcome whose result and
the job's status afterwards are checked, on a real Redis. Forward only::

    queued ──first outcome──> processing ──last outcome──> completed | completed_with_errors
                                                          | failed (every chunk failed)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services import redis_streams
from shield_orchestrator.services.job_tracker import FAILED, PROCESSED, JobTracker, Outcome

from tests.support.chunks import chunk_id, enqueue_job, job_hash

pytestmark = pytest.mark.integration

P, F = PROCESSED, FAILED
W = "completed_with_errors"


class Row(NamedTuple):
    name: str
    total: int
    before: tuple[tuple[int, str], ...]  # (chunk number, outcome) recorded first
    then: tuple[int, str]  # the outcome under test
    result: str  # what record() answers for it
    status: str  # the job's status afterwards


TABLE = (
    Row("queued -> processing", 2, (), (1, P), "counted", "processing"),
    Row("queued -> completed (one chunk)", 1, (), (1, P), "completed", "completed"),
    Row("queued -> failed (one chunk)", 1, (), (1, F), "failed", "failed"),
    Row("processing -> completed", 2, ((1, P),), (2, P), "completed", "completed"),
    Row("processing -> with errors", 2, ((1, P),), (2, F), W, W),
    Row("processing -> with errors (late success)", 2, ((1, F),), (2, P), W, W),
    Row("processing -> failed", 2, ((1, F),), (2, F), "failed", "failed"),
    Row("processing stays (a chunk again)", 3, ((1, P),), (1, F), "duplicate", "processing"),
    Row("completed stays (a chunk again)", 1, ((1, P),), (1, F), "duplicate", "completed"),
    Row("failed stays (a chunk again)", 1, ((1, F),), (1, P), "duplicate", "failed"),
    Row("completed stays (one chunk too many)", 1, ((1, P),), (2, F), "counted", "completed"),
    Row("failed stays (one chunk too many)", 1, ((1, F),), (2, P), "counted", "failed"),
)


def _outcome(job_id: str, entries: dict[str, str], n: int, outcome: str) -> Outcome:
    cid = chunk_id(n)
    # a chunk the job does not have (n > total) comes with an entry id nobody holds
    entry_id = entries.get(cid, "0-1")
    return Outcome(
        entry_id, job_id, cid, outcome, error="refused" if outcome == F else "", attempts=1
    )


async def test_every_transition_of_the_table(redis_client: Any, pg_pool: Any) -> None:
    for row in TABLE:
        await redis_client.flushall()
        job_id = await enqueue_job(redis_client, pg_pool, row.total)
        await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
        delivered = await redis_streams.read_group(
            redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "t:1", row.total, None
        )
        entries = {fields["chunk_id"]: entry_id for entry_id, fields in delivered}
        tracker = JobTracker(redis_client)
        for n, outcome in row.before:
            await tracker.record([_outcome(job_id, entries, n, outcome)])
        before = await job_hash(redis_client, job_id)
        (result,) = await tracker.record([_outcome(job_id, entries, *row.then)])
        after = await job_hash(redis_client, job_id)
        assert (result, after["status"]) == (row.result, row.status), row.name
        # the timestamps follow the status: started when it left queued, finished when terminal
        assert bool(after["started_at"]) == (after["status"] != "queued"), row.name
        terminal = after["status"] not in {"queued", "processing"}
        assert bool(after["finished_at"]) == terminal, row.name
        if before["status"] not in {"queued", "processing"}:  # a terminal job never changes
            assert after["finished_at"] == before["finished_at"], row.name
