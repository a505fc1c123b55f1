"""GET /events/stream under a real uvicorn server (streaming needs a socket, not ASGITransport).

What is proved: the job filter keeps one job's events; a client that reconnects with
Last-Event-ID gets every later event exactly once (none lost, none repeated); keep-alive
comments flow while nothing happens; a bad Last-Event-ID is a 422.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import HEADERS, api_settings, served

pytestmark = pytest.mark.integration


async def sse_events(
    client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Read ``n`` events (id, event, data) from an SSE URL, then disconnect."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with client.stream("GET", url, headers=HEADERS | (headers or {})) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if not line:
                if "id" in current:
                    out.append(current)
                    if len(out) == n:
                        return out
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                current[field] = json.loads(value) if field == "data" else value.strip()
    return out


@pytest.fixture
async def base_url(worker_settings: Any, redis_client: Any, pg_pool: Any) -> AsyncIterator[str]:
    async with served(api_settings(worker_settings)) as url:
        yield url


async def _submit(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    chunks = [{"text": f"t{i}", "source_uri": f"u{i}"} for i in range(n)]
    r = await client.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "t"}, headers=HEADERS
    )
    assert r.status_code == 202
    out: dict[str, Any] = r.json()
    return out


async def test_filtered_stream_resumes_without_loss_or_repeat(
    base_url: str, redis_client: Any
) -> None:
    from shield_orchestrator.services.event_bus import EventType, emit

    async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        a = await _submit(client, 2)
        await _submit(client, 1)  # another job: filtered out
        for i in range(3):
            await emit(redis_client, EventType.PROGRESS, {"n": i}, job_id=a["job_id"])

        url = f"{a['events_url']}&since=0"
        first = await sse_events(client, url, 2)
        for i in range(3, 5):
            await emit(redis_client, EventType.PROGRESS, {"n": i}, job_id=a["job_id"])
        resumed = await sse_events(client, url, 4, {"Last-Event-ID": first[-1]["id"]})

    events = first + resumed
    assert [e["event"] for e in events] == ["ingestion.queued"] + ["ingestion.progress"] * 5
    assert [e["data"].get("n") for e in events[1:]] == [0, 1, 2, 3, 4]
    assert {e["data"]["job_id"] for e in events} == {a["job_id"]}
    assert len({e["id"] for e in events}) == len(events)
    assert events[0]["data"]["chunks_total"] == 2


async def test_stream_without_cursor_starts_with_new_events_and_pings(
    base_url: str, redis_client: Any
) -> None:
    import asyncio

    from shield_orchestrator.services.event_bus import EventType, emit

    async def later() -> None:
        await asyncio.sleep(1.5)  # after at least one keep-alive (ping every 1 s in tests)
        await emit(redis_client, EventType.WORKER_STARTED, {"consumer": "w:1"})

    await emit(redis_client, EventType.WORKER_STOPPED, {"consumer": "old"})  # before: not sent
    raw: list[str] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=20) as client,
        client.stream("GET", "/events/stream", headers=HEADERS) as r,
    ):
        task = asyncio.create_task(later())
        async for line in r.aiter_lines():
            raw.append(line)
            if line.startswith("data:"):
                break
        await task
    assert any(line.startswith(": ping") for line in raw), raw
    assert "event: worker.started" in raw
    assert not any("worker.stopped" in line for line in raw)


async def test_bad_cursor_is_422(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for headers, params in (
            ({"Last-Event-ID": "abc"}, {}),
            ({"Last-Event-ID": "99999999999999999999-0"}, {}),
            ({}, {"since": "1-2-3"}),
            ({}, {"job_id": "nope"}),
        ):
            r = await client.get("/events/stream", headers=HEADERS | headers, params=params)
            assert r.status_code == 422, (headers, params)
