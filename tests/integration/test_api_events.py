"""GET /events/stream under a real uvicorn server (streaming needs a socket, not ASGITransport).

Jobs are created through POST /lightrag/ingest-async and progress through the pool's own
outcome Lua (JobTracker.record), so the streams hold what production writes.

What is proved: the ``events_url`` of a 202, followed as returned, is the job's whole history
then its live events, and the response ends after the terminal event (also for a job that
finished before the client came); a client that reconnects with Last-Event-ID (or ``since``)
gets every later event exactly once; a follower of job A never receives job B's events, and
its response reads no stream but A's (MONITOR: every XREAD names A's stream alone); a job
whose events were trimmed, or that lives only in PostgreSQL, starts with its current state; an
unknown job is a 404; the unfiltered stream starts with the events that come next and sends
keep-alive comments while nothing happens; a bad cursor is a 422.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.api import HEADERS, api_settings, served

pytestmark = pytest.mark.integration

DEADLINE_S = 20  # every stream read below ends (or fails) within this


async def sse(
    client: httpx.AsyncClient,
    url: str,
    n: int | None = None,
    headers: dict[str, str] | None = None,
    after: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Events (id, event, data) of an SSE URL: ``n`` of them then disconnect, or (``n`` None)
    all of them until the server ends the response. ``after(k)`` runs once the k-th event is
    read (the stream is open). Returns (events, ended by the server)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(DEADLINE_S):
        async with client.stream("GET", url, headers=HEADERS | (headers or {})) as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if not line:
                    if "event" in current:
                        out.append(current)
                        if len(out) == n:
                            return out, False
                        if after is not None:
                            await after(len(out))
                    current = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    current[field] = json.loads(value) if field == "data" else value.strip()
    return out, True


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


class Pool:
    """The pool's side, by its real parts: XREADGROUP the chunks, record outcomes by the Lua."""

    def __init__(self, redis: Any) -> None:
        from shield_orchestrator.services.job_tracker import JobTracker

        self.redis = redis
        self.tracker = JobTracker(redis)
        self.delivered: dict[str, list[tuple[str, str]]] = {}  # job id -> (entry id, chunk id)

    async def deliver(self) -> None:
        from shield_orchestrator import keys
        from shield_orchestrator.services import redis_streams

        await redis_streams.ensure_group(self.redis, keys.ingestion_stream(keys.WORKSPACES[0]))
        for entry_id, f in await redis_streams.read_group(
            self.redis, keys.ingestion_stream(keys.WORKSPACES[0]), "t:1", 10_000, None
        ):
            self.delivered.setdefault(f["job_id"], []).append((entry_id, f["chunk_id"]))

    async def record(self, job_id: str, n: int, failed: int = 0) -> list[str]:
        """Record the next ``n`` chunks of ``job_id`` in one call (the first ``failed`` fail)."""
        from shield_orchestrator.services.job_tracker import FAILED, PROCESSED, Outcome

        await self.deliver()
        todo, self.delivered[job_id] = self.delivered[job_id][:n], self.delivered[job_id][n:]
        return await self.tracker.record(
            [
                Outcome(e, job_id, c, FAILED if i < failed else PROCESSED, error="boom")
                for i, (e, c) in enumerate(todo)
            ]
        )


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=DEADLINE_S) as c:
        yield c


@pytest.fixture
def pool(redis_client: Any) -> Pool:
    return Pool(redis_client)


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


async def test_a_finished_job_stream_is_its_whole_history_then_the_end(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    from shield_orchestrator import keys

    job = await _submit(client, 3)
    assert await pool.record(job["job_id"], 3, failed=1) == [
        "counted", "counted", "completed_with_errors"
    ]  # fmt: skip
    events, ended = await sse(client, job["events_url"])
    assert ended
    assert _types(events) == [
        "ingestion.queued",
        "ingestion.started",
        "ingestion.chunk_failed",
        "ingestion.progress",
        "ingestion.completed",
    ]
    assert events[-1]["data"]["status"] == "completed_with_errors"
    ttl = await pool.redis.ttl(keys.job_events(job["job_id"]))  # expires with the job hash
    assert 0 < ttl <= pool.tracker.config.job_status_ttl_s
    assert {e["data"]["job_id"] for e in events} == {job["job_id"]}
    assert len({e["id"] for e in events}) == len(events)


async def test_a_job_in_flight_misses_nothing_between_the_202_and_the_connection(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    job = await _submit(client, 4)
    await pool.record(job["job_id"], 2)  # before the client connects

    async def live(k: int) -> None:
        if k == 3:  # queued, started, progress: what happened before; now live ones
            await pool.record(job["job_id"], 1)
            await pool.record(job["job_id"], 1)

    events, ended = await sse(client, job["events_url"], after=live)
    assert ended
    assert _types(events) == ["ingestion.queued", "ingestion.started"] + [
        "ingestion.progress"
    ] * 3 + ["ingestion.completed"]
    assert [e["data"]["chunks_processed"] for e in events[2:]] == [2, 3, 4, 4]


async def test_resume_with_last_event_id_or_since_in_the_middle_of_a_job(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    job = await _submit(client, 3)
    await pool.record(job["job_id"], 1)
    first, ended = await sse(client, job["events_url"], 2)  # queued, started: then cut
    assert not ended
    await pool.record(job["job_id"], 2)
    resumed, ended = await sse(client, job["events_url"], None, {"Last-Event-ID": first[-1]["id"]})
    assert ended
    by_since, _ = await sse(client, f"{job['events_url']}&since={first[-1]['id']}")
    whole, _ = await sse(client, job["events_url"])
    assert first + resumed == whole  # nothing lost, nothing repeated
    assert by_since == resumed
    assert _types(resumed) == ["ingestion.progress", "ingestion.progress", "ingestion.completed"]


async def test_a_follower_of_job_a_never_receives_job_b_events(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    a = await _submit(client, 2)
    b = await _submit(client, 2)

    async def interleaved(k: int) -> None:
        if k == 1:  # A's stream is open: B and A progress in turn
            for job_id in (b["job_id"], a["job_id"], b["job_id"], a["job_id"]):
                await pool.record(job_id, 1)

    events, ended = await sse(client, a["events_url"], after=interleaved)
    b_events, _ = await sse(client, b["events_url"])
    assert ended
    assert {e["data"]["job_id"] for e in events} == {a["job_id"]}
    assert _types(events)[-1] == "ingestion.completed"
    assert {e["data"]["job_id"] for e in b_events} == {b["job_id"]}
    assert not {e["id"] for e in events} & {e["id"] for e in b_events}


async def test_trimmed_events_start_with_the_job_state_then_follow(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    from shield_orchestrator import keys

    job = await _submit(client, 3)
    await pool.record(job["job_id"], 1)
    await pool.redis.xtrim(keys.job_events(job["job_id"]), maxlen=1, approximate=False)
    first, _ = await sse(client, job["events_url"], 1)
    await pool.record(job["job_id"], 2)
    rest, ended = await sse(client, job["events_url"], None, {"Last-Event-ID": first[0]["id"]})
    again, _ = await sse(client, job["events_url"])  # finished: its state, then the end
    assert _types(first) == ["ingestion.state"]
    assert first[0]["data"]["status"] == "processing"
    assert first[0]["data"]["chunks_processed"] == 1
    assert ended
    assert _types(rest) == ["ingestion.progress", "ingestion.completed"]
    assert _types(again) == ["ingestion.state"]
    assert again[0]["data"]["status"] == "completed"
    assert again[0]["data"]["percent_complete"] == 100.0


async def test_a_job_only_in_postgresql_gets_its_state_then_the_end(
    client: httpx.AsyncClient, pool: Pool, pg_pool: Any
) -> None:
    from shield_orchestrator import keys

    job = await _submit(client, 2)
    await pool.record(job["job_id"], 2, failed=2)
    assert (await pool.tracker.flush(pg_pool)).jobs == 1
    for key in (keys.job(job["job_id"]), keys.job_events(job["job_id"])):
        await pool.redis.delete(key)  # what the TTL does after the end
    events, ended = await sse(client, job["events_url"])
    assert ended
    assert _types(events) == ["ingestion.state"]
    assert events[0]["data"]["status"] == "failed"
    assert events[0]["data"]["chunks_failed"] == 2


async def test_unknown_job_is_404_and_bad_cursor_is_422(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/events/stream",
        params={"job_id": "00000000-0000-4000-8000-000000000000"},
        headers=HEADERS,
    )
    assert r.status_code == 404
    assert "00000000-0000-4000-8000-000000000000" in r.json()["detail"]
    for headers, params in (
        ({"Last-Event-ID": "abc"}, {}),
        ({"Last-Event-ID": "99999999999999999999-0"}, {}),
        ({}, {"since": "1-2-3"}),
        ({}, {"job_id": "nope"}),
    ):
        r = await client.get("/events/stream", headers=HEADERS | headers, params=params)
        assert r.status_code == 422, (headers, params)


async def test_stream_without_job_starts_with_new_events_and_pings(
    base_url: str, redis_client: Any
) -> None:
    from shield_orchestrator.services.event_bus import EventType, emit

    await emit(redis_client, EventType.WORKER_STOPPED, {"consumer": "old"})  # before: not sent
    raw: list[str] = []
    async with (
        asyncio.timeout(DEADLINE_S),
        httpx.AsyncClient(base_url=base_url, timeout=DEADLINE_S) as client,
        client.stream("GET", "/events/stream", headers=HEADERS) as r,
    ):
        async for line in r.aiter_lines():
            raw.append(line)
            if line.startswith(": ping") and not any(x.startswith("data:") for x in raw):
                await emit(redis_client, EventType.WORKER_STARTED, {"consumer": "w:1"})
            if line.startswith("data:"):
                break
    assert any(line.startswith(": ping") for line in raw), raw
    assert "event: worker.started" in raw
    assert not any("worker.stopped" in line for line in raw)


async def test_a_follower_of_job_a_reads_no_other_stream(
    client: httpx.AsyncClient, pool: Pool, redis_srv: Any
) -> None:
    """Not only filtered: every stream read the follower's response sends names job A's
    stream alone (no other job's, not the global one), whatever Redis runs meanwhile (MONITOR)."""
    from redis.asyncio import Redis
    from shield_orchestrator import keys

    a = await _submit(client, 2)
    b = await _submit(client, 2)
    watcher = Redis(port=redis_srv.port, password=redis_srv.password, decode_responses=True)
    seen: list[str] = []
    done = asyncio.Event()
    async with watcher.monitor() as monitor:

        async def collect() -> None:
            while True:
                seen.append((await monitor.next_command())["command"])
                if seen[-1] == "ECHO monitor-done":
                    done.set()

        collector = asyncio.create_task(collect())

        async def interleaved(k: int) -> None:
            if k == 1:  # A's stream is open: B and A progress in turn
                for job_id in (b["job_id"], a["job_id"], b["job_id"], a["job_id"]):
                    await pool.record(job_id, 1)

        try:
            events, ended = await sse(client, a["events_url"], after=interleaved)
            await pool.redis.echo("monitor-done")  # MONITOR shows every command before it
            async with asyncio.timeout(DEADLINE_S):
                await done.wait()
        finally:
            collector.cancel()
    await watcher.aclose()
    assert ended
    assert _types(events)[-1] == "ingestion.completed"
    reads = [c.split() for c in seen if c.split()[0].upper() in ("XREAD", "XRANGE", "XREVRANGE")]
    assert reads, seen
    for words in reads:
        if words[0].upper() == "XREAD":
            at = [w.upper() for w in words].index("STREAMS")
            names = words[at + 1 : at + 1 + (len(words) - at - 1) // 2]
        else:
            names = [words[1]]
        assert names == [keys.job_events(a["job_id"])], words
    assert any(words[0].upper() == "XREAD" for words in reads), seen  # it followed live
