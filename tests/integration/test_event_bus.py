"""Event bus: bounded stream, per-job order, ids usable as SSE Last-Event-ID, job filter."""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services.event_bus import (
    EventType,
    emit,
    queue_event,
    read_events,
    read_events_page,
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


async def test_job_filter_and_cursor_skip_other_jobs(redis_client: Any) -> None:
    for i in range(6):
        await emit(redis_client, EventType.PROGRESS, {"n": i}, job_id="a" if i % 3 == 0 else "b")
    events, cursor = await read_events_page(redis_client, after_id="0", job_id="a", count=4)
    assert [e.data["n"] for e in events] == [0, 3]
    later, cursor2 = await read_events_page(redis_client, after_id=cursor, job_id="a")
    assert later == []  # entries 4, 5 belong to b
    assert cursor2 != cursor


async def test_queue_event_in_multi_and_dollar_cursor(redis_client: Any) -> None:
    async with redis_client.pipeline(transaction=True) as pipe:
        queue_event(pipe, EventType.QUEUED, {"chunks_total": 3}, job_id="j")
        (entry_id,) = await pipe.execute()
    events, cursor = await read_events_page(redis_client, after_id="$")
    assert events == []
    assert cursor == entry_id
    new_id = await emit(redis_client, EventType.WORKER_STARTED, {"consumer": "h:1"})
    events = await read_events(redis_client, after_id=cursor, block_ms=100)
    assert [(e.id, e.type, e.job_id) for e in events] == [(new_id, "worker.started", "")]


async def test_event_stream_is_bounded(redis_client: Any) -> None:
    n = keys.EVENTS_MAXLEN + 500
    async with redis_client.pipeline(transaction=False) as pipe:
        for i in range(n):
            queue_event(pipe, EventType.PROGRESS, {"n": i}, job_id="j")
        await pipe.execute()
    length = await redis_client.xlen(keys.EVENTS_STREAM)
    # MAXLEN ~ trims whole macro nodes: never below the cap, at most one node above it
    assert keys.EVENTS_MAXLEN <= length < n
