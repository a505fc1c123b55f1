"""/health/detailed shows Temporal (issue 16): reachable or the reason, and the indexers seen.

Real parts: Redis and PostgreSQL (conftest), the API app in this loop, the Temporal dev server
of tests/support/temporal.py and a real indexer worker (indexing/worker.py build_worker with
the real activities) polling the test's own task queue.

What is proved: with no indexer polling, Temporal is ok with an empty list of indexers; once
an indexer runs it is listed (its <pid>@<host> identity, both task queues); with Temporal
unreachable (a free port), with a listener that never answers, and with a dev server stopped
after the API connected, the health answers 200 ``ok`` (Redis and PostgreSQL are what
ingestion needs) with Temporal's reason and no workspace warning, and ingestion still takes
chunks (202).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.pools import wait_for
from tests.support.servers import LOOPBACK, free_port
from tests.support.temporal import TemporalServer, temporal_server, temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["temporal_srv"]  # the session fixture, used by name


def target(address: str, task_queue: str) -> Any:
    from shield_orchestrator.services.repositories import TemporalTarget

    return TemporalTarget(address, "default", task_queue)


@pytest.fixture
def task_queue() -> str:
    return f"test-health-{uuid.uuid4().hex[:8]}"


async def health(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.get("/health/detailed", headers=HEADERS)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["status"] == "ok"  # Temporal never degrades ingestion's health
    return out


async def ingest_accepted(api: httpx.AsyncClient) -> None:
    body = {"chunks": [{"text": "still ingesting", "source_uri": "u"}], "source_type": "t"}
    r = await api.post("/lightrag/ingest-async", json=body, headers=HEADERS)
    assert r.status_code == 202, r.text


async def test_temporal_and_the_indexers_polling_it(
    worker_settings: Any, redis_client: Any, pg_pool: Any, temporal_srv: TemporalServer,
    task_queue: str, tmp_path: Path,
) -> None:  # fmt: skip
    from shield_orchestrator.indexing.activities import IndexerConfig, IndexingActivities
    from shield_orchestrator.indexing.worker import build_worker
    from temporalio.client import Client

    where = target(temporal_srv.address, task_queue)
    async with asgi_client(api_settings(worker_settings), where) as api:
        out = await health(api)
        temporal = out["temporal"]
        assert temporal["ok"] is True
        assert temporal["error"] is None
        assert (temporal["address"], temporal["namespace"], temporal["task_queue"]) == (
            temporal_srv.address, "default", task_queue)  # fmt: skip
        assert temporal["indexers"] == []
        assert out["warnings"] == []  # the workspaces' warnings: Temporal is not one of them

        client = await Client.connect(temporal_srv.address)
        activities = IndexingActivities(redis_client, pg_pool, IndexerConfig(tmp_path / "m"))
        worker = build_worker(client, activities, task_queue=task_queue, graceful_shutdown_s=5)
        me = f"{os.getpid()}@{socket.gethostname()}"
        async with worker:

            async def polls_both() -> bool:
                seen = (await health(api))["temporal"]["indexers"]
                return bool(seen) and len(seen[0]["polls"]) == 2

            await wait_for(polls_both, what="the indexer polling both task queues", every_s=0.1)
            out = await health(api)
        (indexer,) = out["temporal"]["indexers"]
        assert indexer["identity"] == me
        assert sorted(indexer["polls"]) == ["activity", "workflow"]
        assert indexer["last_seen_age_s"] >= 0


async def test_unreachable_temporal_is_a_reason_not_a_failure(
    worker_settings: Any, redis_client: Any, pg_pool: Any
) -> None:
    port = free_port()
    async with asgi_client(api_settings(worker_settings), target(f"{LOOPBACK}:{port}", "q")) as api:
        out = await health(api)
        temporal = out["temporal"]
        assert temporal["ok"] is False
        assert temporal["latency_ms"] is None
        assert temporal["indexers"] == []
        assert temporal["error"].startswith(f"temporal unavailable at {LOOPBACK}:{port}")
        assert "Connection refused" in temporal["error"]
        assert out["warnings"] == []
        assert out["redis"]["ok"] is True
        assert out["postgres"]["ok"] is True
        await ingest_accepted(api)


@pytest.fixture
async def silent_listener() -> AsyncIterator[str]:
    """A loopback port that accepts connections and never answers (a hung Temporal)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{LOOPBACK}:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_temporal_that_never_answers_does_not_hold_the_health(
    worker_settings: Any, redis_client: Any, pg_pool: Any, silent_listener: str
) -> None:
    from shield_orchestrator.services.temporal_status import HEALTH_TIMEOUT_S

    async with asgi_client(api_settings(worker_settings), target(silent_listener, "q")) as api:
        temporal = (await health(api))["temporal"]
        assert temporal["ok"] is False
        assert temporal["error"] == (
            f"temporal unavailable at {silent_listener} (namespace 'default'): "
            f"no answer within {HEALTH_TIMEOUT_S:g} s"
        )
        await ingest_accepted(api)


async def test_a_temporal_stopped_after_the_api_connected(
    worker_settings: Any, redis_client: Any, pg_pool: Any
) -> None:
    with temporal_server() as server:
        async with asgi_client(api_settings(worker_settings), target(server.address, "q")) as api:
            assert (await health(api))["temporal"]["ok"] is True  # the API's client connected
            server.stop()
            temporal = (await health(api))["temporal"]
            assert temporal["ok"] is False
            assert temporal["error"].startswith(f"temporal unavailable at {server.address}")
            await ingest_accepted(api)
