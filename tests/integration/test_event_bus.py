"""Event bus: bounded streams, per-job order, one id per event in both streams, job streams
read alone."""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services.event_bus import (
    EMIT_LUA,
    EventType,
    emit,
    event_fields,
    latest_id,
    read_events,
)

pytestmark = pytest.mark.integration


async def test_emit_then_resume_after_last_event_id(redis_client: Any) -> None:
    ids = [await emit(redis_client, EventType.PROGRESS, {"n": i}, job_id="j1") for i in range(5)]
    events = await read_events(redis_client, after_id="0")
    assert [e.id for e in events] == ids
    assert [e.data["n"] for e in events] == list(range(5))
    assert all(e.type == "ingestion.progress" and e.data["job_id"] == "j1" for e in events)
    # a client that saw ids[1] resumes with exactly the rest
    resumed = await read_events(redis_client, after_id=ids[1])
    assert [e.id for e in resumed] == ids[2:]


async def test_a_job_stream_holds_that_job_alone_with_the_global_ids(redis_client: Any) -> None:
    for i in range(6):
        await emit(redis_client, EventType.PROGRESS, {"n": i}, job_id="a" if i % 3 == 0 else "b")
    a = await read_events(redis_client, after_id="0", job_id="a")
    b = await read_events(redis_client, after_id="0", job_id="b")
    everything = await read_events(redis_client, after_id="0")
    assert [e.data["n"] for e in a] == [0, 3]
    assert [e.data["n"] for e in b] == [1, 2, 4, 5]
    by_id = {e.id: e for e in everything}
    assert all(by_id[e.id] == e for e in a + b)  # the same event under the same id
    assert await read_events(redis_client, after_id=a[-1].id, job_id="a") == []


async def test_worker_events_stay_out_of_job_streams_and_latest_id_is_a_cursor(
    redis_client: Any,
) -> None:
    assert await latest_id(redis_client) == "0-0"
    queued = await emit(redis_client, EventType.QUEUED, {"chunks_total": 3}, job_id="j")
    cursor = await latest_id(redis_client)
    assert cursor == queued
    new_id = await emit(redis_client, EventType.WORKER_STARTED, {"consumer": "h:1"})
    events = await read_events(redis_client, after_id=cursor, block_ms=100)
    assert [(e.id, e.type, e.job_id) for e in events] == [(new_id, "worker.started", "")]
    assert [e.id for e in await read_events(redis_client, job_id="j")] == [queued]


async def test_event_streams_are_bounded(redis_client: Any) -> None:
    n = max(keys.EVENTS_MAXLEN, keys.JOB_EVENTS_MAXLEN) + 500
    sha = await redis_client.script_load(EMIT_LUA)  # what emit() runs, pipelined
    async with redis_client.pipeline(transaction=False) as pipe:
        for i in range(n):
            f = event_fields(EventType.PROGRESS, {"n": i}, job_id="j")
            pipe.evalsha(
                sha,
                2,
                keys.EVENTS_STREAM,
                keys.job_events("j"),
                keys.EVENTS_MAXLEN,
                f["type"],
                "j",
                f["data"],
            )
        await pipe.execute()
    # MAXLEN ~ trims whole macro nodes: never below the cap, at most one node above it
    assert keys.EVENTS_MAXLEN <= await redis_client.xlen(keys.EVENTS_STREAM) < n
    assert keys.JOB_EVENTS_MAXLEN <= await redis_client.xlen(keys.job_events("j")) < n


async def test_a_job_stream_ahead_of_the_global_one_still_gets_the_event(
    redis_client: Any,
) -> None:
    """Only if the global stream was deleted and made again can a job's stream be ahead of
    it: the copy then takes a fresh id rather than failing the writer's whole Lua call."""
    ahead = "99999999999999-0"
    await redis_client.xadd(keys.job_events("j"), {"type": "x"}, id=ahead)
    entry_id = await emit(redis_client, EventType.PROGRESS, {"n": 1}, job_id="j")
    [(global_id, _)] = await redis_client.xrange(keys.EVENTS_STREAM)
    assert global_id == entry_id
    copy = await read_events(redis_client, after_id=ahead, job_id="j")
    assert [(e.type, e.data["n"]) for e in copy] == [("ingestion.progress", 1)]
