"""retry-failed end to end: API submit -> real WorkerPool fails one chunk for good -> the job
ends completed_with_errors -> GET /failures lists it -> POST retry-failed -> the pool processes
the retry job -> it completes.

No dead-letter entry is written by hand: the body retry-failed re-enqueues is the one the
pool's outcome Lua copied from the original stream entry. The failure is scripted by the
engine (a failing source_uri the test clears), not by the chunk's metadata, because a retry
job carries its chunks' metadata unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator.engines.base import ChunkInput, ChunkResult, PermanentChunkError
from shield_orchestrator.engines.noop import NoopEngine

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.chunks import dead_letters, job_hash
from tests.support.pools import running_pool, wait_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "completed_with_errors", "failed"}


class FailingUris(NoopEngine):
    """The noop engine, failing for good the chunks whose source_uri is in ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()

    async def process(self, chunk: ChunkInput) -> ChunkResult:
        if chunk.source_uri in self.failing:
            self.calls[(chunk.job_id, chunk.chunk_id)] += 1
            raise PermanentChunkError("scripted: engine rejects this chunk")
        return await super().process(chunk)


async def _status(redis: Any, job_id: str) -> str:
    return (await job_hash(redis, job_id)).get("status", "")


async def _finished_job(api: Any, redis: Any, job_id: str) -> dict[str, Any]:
    """Wait until the pool has finished the job; its GET /jobs/{id} body."""

    async def finished() -> bool:
        return await _status(redis, job_id) in TERMINAL

    await wait_for(finished)
    r = await api.get(f"/jobs/{job_id}", headers=HEADERS)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def test_failed_chunk_is_retried_from_its_dead_letter_body(
    worker_settings: Any, redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    engine = FailingUris()
    engine.failing.add("test://bad")
    uris = ["test://a", "test://bad", "test://c"]
    chunks = [
        {"text": f"text of {u}", "source_uri": u, "metadata": {"n": i}} for i, u in enumerate(uris)
    ]
    async with (
        asgi_client(api_settings(worker_settings)) as api,
        running_pool(redis_srv, engine, db=pg_pool, batch_size=2, pool_size=2),
    ):
        r = await api.post(
            "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "t"}, headers=HEADERS
        )
        assert r.status_code == 202, r.text
        job_id = str(r.json()["job_id"])

        job = await _finished_job(api, redis_client, job_id)
        assert job["status"] == "completed_with_errors"
        assert (job["chunks_processed"], job["chunks_failed"]) == (2, 1)

        # the pool's dead-letter entry carries the original body (written by the Lua)
        (dl,) = await dead_letters(redis_client)
        assert dl["job_id"] == job_id
        assert dl["kind"] == "ingest_chunk"
        assert '"test://bad"' in dl["body"]

        r = await api.get(f"/jobs/{job_id}/failures", headers=HEADERS)
        assert r.status_code == 200
        (failure,) = r.json()["failures"]
        assert failure["source_uri"] == "test://bad"
        assert failure["error"].endswith("scripted: engine rejects this chunk")
        failed_chunk = failure["chunk_id"]

        engine.failing.clear()  # the engine accepts the chunk from now on
        r = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)
        assert r.status_code == 202, r.text
        retry = r.json()
        assert retry["retry_of"] == job_id
        assert retry["chunks_total"] == 1
        retry_id = str(retry["job_id"])
        assert retry_id != job_id

        out = await _finished_job(api, redis_client, retry_id)
        assert out["status"] == "completed"
        assert (out["chunks_processed"], out["chunks_failed"]) == (1, 0)

        # the retried chunk went through the engine again, with its text and metadata
        assert engine.calls[(retry_id, failed_chunk)] == 1
        assert engine.calls[(job_id, failed_chunk)] == 1
        # calling retry-failed again returns the same retry job (idempotent)
        again = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)
        assert again.status_code in (200, 202), again.text
        assert again.json()["job_id"] == retry_id
        # the original job did not move
        assert await _status(redis_client, job_id) == "completed_with_errors"
