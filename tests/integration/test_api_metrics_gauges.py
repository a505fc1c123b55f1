"""The gauges /metrics reads from Redis at each scrape, which the shipped alert rules use
(collections/.../monitoring/alerts.yml): live workers, the longest idle of a consumer that
still holds pending entries, and the write-behind backlog. Real Redis and PostgreSQL, the
API app through ASGITransport, state written by the real heartbeat and stream commands."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services import heartbeat, redis_streams
from shield_orchestrator.services.job_tracker import PROCESSED, JobTracker, Outcome

from tests.support.api import HEADERS, api_settings, asgi_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any, pg_pool: Any) -> AsyncIterator[Any]:
    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


async def gauges(api: Any) -> dict[str, float]:
    r = await api.get("/metrics", headers=HEADERS)
    assert r.status_code == 200, r.text
    found = re.findall(r"^(shield_[a-z_]+) ([0-9.e+-]+)$", r.text, flags=re.MULTILINE)
    return {name: float(value) for name, value in found}


async def test_an_idle_deployment_reads_zero(api: Any) -> None:
    g = await gauges(api)
    assert g["shield_workers_live"] == 0
    assert g["shield_queue_stale_pending_seconds"] == 0
    assert g["shield_jobs_dirty"] == 0


async def test_live_workers_are_counted_from_their_heartbeats(api: Any, redis_client: Any) -> None:
    now = time.time()
    for n in (1, 2):
        beat = heartbeat.WorkerBeat(
            f"host:{n}", "host", 100 + n, now, now, 0, 0, 0, 0.0, "noop", "running"
        )
        await heartbeat.beat(redis_client, beat, interval_s=10)
    assert (await gauges(api))["shield_workers_live"] == 2
    await heartbeat.forget(redis_client, "host:2")
    assert (await gauges(api))["shield_workers_live"] == 1


async def test_stale_pending_is_the_idle_of_a_consumer_holding_entries(
    api: Any, redis_client: Any
) -> None:
    stream, group = keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP
    entry = await redis_client.xadd(stream, {"v": "1"})
    await redis_client.xgroup_create(stream, group, id="0")
    await redis_client.xreadgroup(group, "gone:1", {stream: ">"}, count=1)
    await asyncio.sleep(0.3)  # the holder stays silent: its idle time grows
    # a live consumer that holds nothing does not count, however recently it read
    await redis_client.xreadgroup(group, "live:1", {stream: ">"}, count=1)
    stale = (await gauges(api))["shield_queue_stale_pending_seconds"]
    assert stale >= 0.3
    await redis_client.xack(stream, group, entry)
    assert (await gauges(api))["shield_queue_stale_pending_seconds"] == 0


async def test_the_write_behind_backlog_counts_jobs_the_pool_updated(
    api: Any, redis_client: Any
) -> None:
    """A job submitted through the API, one chunk recorded by the pool's real outcome Lua:
    its PostgreSQL row is behind until a flush."""
    chunks = [{"text": f"chunk number {i}", "source_uri": f"test://doc/{i}"} for i in range(2)]
    r = await api.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "docs"}, headers=HEADERS
    )
    assert r.status_code == 202, r.text
    await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    [(entry, fields)] = await redis_streams.read_group(
        redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "t:1", 1, None
    )
    tracker = JobTracker(redis_client)
    outcome = Outcome(entry, fields["job_id"], fields["chunk_id"], PROCESSED)
    assert await tracker.record([outcome]) == ["counted"]
    assert (await gauges(api))["shield_jobs_dirty"] == 1


async def test_a_workspace_whose_chunks_wait_unserved_is_counted(
    api: Any, redis_client: Any
) -> None:
    """Chunks on a workspace's stream and no heartbeat naming it: unserved, until a worker
    process says it serves that workspace."""
    ws = keys.WORKSPACES[0]
    chunks = [{"text": "waiting chunk", "source_uri": "test://doc/w"}]
    r = await api.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "docs"}, headers=HEADERS
    )
    assert r.status_code == 202, r.text
    assert (await gauges(api))["shield_workspaces_unserved"] == 1
    now = time.time()
    beat = heartbeat.WorkerBeat("host:1", "host", 101, now, now, 0, 0, 0, 0.0, "offline",
                                "running", {ws: now})  # fmt: skip
    await heartbeat.beat(redis_client, beat, interval_s=10)
    assert (await gauges(api))["shield_workspaces_unserved"] == 0
