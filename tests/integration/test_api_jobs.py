"""GET /jobs/{id}, /failures and POST /retry-failed against real Redis and PostgreSQL.

Progress is written by the pool's own code: ``JobTracker.record`` (the outcome Lua) for the
chunks of a job, or a running WorkerPool whose flusher writes PostgreSQL, so the API reads
what workers really produce; dead-letter entries carry the original ``body`` field (the
contract retry-failed relies on).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.pools import running_pool, wait_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any) -> AsyncIterator[Any]:
    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


async def _submit(api: Any, n: int, meta: dict[int, dict[str, str]] | None = None) -> str:
    chunks = [
        {"text": f"text {i}", "source_uri": f"test://{i}", "metadata": (meta or {}).get(i, {})}
        for i in range(n)
    ]
    r = await api.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "t"}, headers=HEADERS
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


async def _finish(redis: Any, job_id: str, failed: set[str]) -> None:
    """Record an outcome for every chunk of the job the way the pool does (JobTracker.record:
    counters, status, events, and a dead-letter entry with its body for ``failed``)."""
    from shield_orchestrator import keys
    from shield_orchestrator.services import redis_streams
    from shield_orchestrator.services.job_tracker import FAILED, PROCESSED, JobTracker, Outcome

    await redis_streams.ensure_group(redis, keys.ingestion_stream(keys.WORKSPACES[0]))
    entries = await redis_streams.read_group(
        redis, keys.ingestion_stream(keys.WORKSPACES[0]), "api-test:1", 1000, None
    )
    outcomes = [
        Outcome(entry_id, job_id, f["chunk_id"], FAILED, kind=f["kind"], attempts=4,
                error="ChunkError: engine said no")
        if f["chunk_id"] in failed
        else Outcome(entry_id, job_id, f["chunk_id"], PROCESSED)
        for entry_id, f in entries
        if f["job_id"] == job_id
    ]  # fmt: skip
    await JobTracker(redis).record(outcomes)


async def test_job_status_from_redis(api: Any, redis_client: Any) -> None:
    job_id = await _submit(api, 4)
    r = await api.get(f"/jobs/{job_id}", headers=HEADERS)
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "queued"
    assert (out["chunks_total"], out["chunks_processed"], out["percent_complete"]) == (4, 0, 0.0)
    assert out["source"] == "redis"
    assert out["error_summary"] is None

    await _finish(redis_client, job_id, failed={"c000002"})
    out = (await api.get(f"/jobs/{job_id}", headers=HEADERS)).json()
    assert out["status"] == "completed_with_errors"
    assert (out["chunks_processed"], out["chunks_failed"], out["percent_complete"]) == (3, 1, 100)
    assert out["error_summary"] == f"1 of 4 chunks failed; see /jobs/{job_id}/failures"
    assert out["created_at"] <= out["started_at"] <= out["finished_at"]


async def test_job_status_and_failures_fall_back_to_postgres_after_the_ttl(
    api: Any, redis_client: Any, redis_srv: RedisServer, pg_pool: Any
) -> None:
    """The real chain: a pool processes the job, its flusher writes PostgreSQL, the job hash
    expires after a 1 s TTL, and the API answers from PostgreSQL."""
    from shield_orchestrator import keys

    job_id = await _submit(api, 2, meta={1: {"noop_fail": "permanent"}})
    async with running_pool(redis_srv, db=pg_pool, job_status_ttl_s=1):

        async def expired() -> bool:
            return not await redis_client.exists(keys.job(job_id))

        await wait_for(expired, what="the job hash expired")
    r = await api.get(f"/jobs/{job_id}", headers=HEADERS)
    assert r.status_code == 200
    out = r.json()
    assert out["source"] == "postgres"
    assert (out["status"], out["chunks_processed"], out["chunks_failed"]) == (
        "completed_with_errors", 1, 1)  # fmt: skip
    assert out["percent_complete"] == 100.0
    r = await api.get(f"/jobs/{job_id}/failures", headers=HEADERS)
    assert r.status_code == 200
    assert [f["chunk_id"] for f in r.json()["failures"]] == ["c000002"]


async def test_unknown_job_is_404_and_malformed_id_is_422(api: Any) -> None:
    unknown = "0b5c3f0e-0000-4000-8000-000000000000"
    for path in (f"/jobs/{unknown}", f"/jobs/{unknown}/failures"):
        r = await api.get(path, headers=HEADERS)
        assert r.status_code == 404
        assert r.json()["detail"].startswith(f"no job {unknown}")
    r = await api.post(f"/jobs/{unknown}/retry-failed", headers=HEADERS)
    assert r.status_code == 404
    r = await api.get("/jobs/not-a-uuid", headers=HEADERS)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "job_id"]


async def test_failures_lists_dead_lettered_chunks_from_stream_and_postgres(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    job_id = await _submit(api, 3)
    await _finish(redis_client, job_id, failed={"c000001"})
    await pg_pool.execute(  # an older failure already flushed (its DL entry trimmed)
        "INSERT INTO chunk_failures VALUES ($1, 'c000003', 2, 'old error', '1-1', now())", job_id
    )
    r = await api.get(f"/jobs/{job_id}/failures", headers=HEADERS)
    assert r.status_code == 200
    failures = r.json()["failures"]
    assert [f["chunk_id"] for f in failures] == ["c000001", "c000003"]
    assert failures[0]["error"] == "ChunkError: engine said no"
    assert failures[0]["source_uri"] == "test://0"
    assert failures[0]["attempts"] == 4
    assert failures[1]["error"] == "old error"
    assert "text 0" not in r.text  # chunk text is not returned


async def test_retry_failed_reenqueues_as_a_new_job_once(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    from shield_orchestrator import keys

    job_id = await _submit(api, 3)
    early = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)
    assert early.status_code == 409
    assert "still queued" in early.json()["detail"]

    await _finish(redis_client, job_id, failed={"c000001", "c000003"})
    first = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)
    again = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)

    assert first.status_code == again.status_code == 202
    retry = first.json()
    assert retry["retry_of"] == job_id
    assert retry["chunks_total"] == 2
    assert again.json()["job_id"] == retry["job_id"]
    entries = await redis_client.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))
    assert [(f["job_id"], f["chunk_id"]) for _, f in entries] == [
        (retry["job_id"], "c000001"),
        (retry["job_id"], "c000003"),
    ]
    assert json.loads(entries[1][1]["body"])["text"] == "text 2"
    old = (await api.get(f"/jobs/{job_id}", headers=HEADERS)).json()
    assert old["status"] == "completed_with_errors"  # the old job never moves backwards


async def test_retry_failed_of_a_clean_job_is_409(api: Any, redis_client: Any) -> None:
    job_id = await _submit(api, 1)
    await _finish(redis_client, job_id, failed=set())
    r = await api.post(f"/jobs/{job_id}/retry-failed", headers=HEADERS)
    assert r.status_code == 409
    assert r.json()["detail"] == f"job {job_id} has no failed chunks"
