"""Health, metrics and authentication against real Redis and PostgreSQL (ASGITransport).

What is proved: /health needs nothing (no key, no dependency); every other route answers 401
without a key or with a wrong one, in either header form; the OpenAPI pages are served without
a key when docs_enabled and are not served (401 without a key, 404 with one) when it is off;
/health/detailed reports the dependencies, the workers' heartbeats and the queues (503 when a
dependency is down);
/metrics counts requests by route template and status and shows the queue gauges.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import API_KEY, HEADERS, OTHER_KEY, api_settings, asgi_client
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

JOB = "0b5c3f0e-0000-4000-8000-000000000000"
REPO = "1c6d4a1f-0000-4000-8000-000000000000"
SECURED = [
    ("POST", "/lightrag/ingest-async"),
    ("POST", "/lightrag/query"),
    ("GET", "/jobs"),
    ("GET", f"/jobs/{JOB}"),
    ("GET", f"/jobs/{JOB}/failures"),
    ("POST", f"/jobs/{JOB}/retry-failed"),
    ("GET", "/events/stream"),
    ("GET", "/health/detailed"),
    ("GET", "/metrics"),
    ("POST", "/repos"),
    ("GET", "/repos"),
    ("GET", f"/repos/{REPO}"),
    ("DELETE", f"/repos/{REPO}"),
    ("POST", f"/repos/{REPO}/index"),
]


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any, pg_pool: Any) -> AsyncIterator[Any]:
    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


def test_every_secured_operation_is_listed(api: Any) -> None:
    paths = {
        (m.upper(), p)
        for p, ops in api.app.openapi()["paths"].items()
        for m in ops
        if p != "/health"
    }
    assert paths == {(m, p.replace(JOB, "{job_id}").replace(REPO, "{repo_id}")) for m, p in SECURED}


@pytest.mark.parametrize(("method", "path"), SECURED)
async def test_secured_routes_answer_401_without_a_valid_key(
    api: Any, method: str, path: str
) -> None:
    for headers in ({}, {"X-API-Key": API_KEY + "x"}, {"Authorization": "Bearer nope"}):
        r = await api.request(method, path, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert API_KEY not in r.text


async def test_either_key_in_either_header_is_accepted(api: Any) -> None:
    for headers in ({"X-API-Key": OTHER_KEY}, {"Authorization": f"Bearer {API_KEY}"}):
        r = await api.get(f"/jobs/{JOB}", headers=headers)
        assert r.status_code == 404


DOCS = ("/docs", "/redoc", "/openapi.json")


async def test_the_openapi_pages_are_open_when_enabled(worker_settings: Any) -> None:
    async with asgi_client(api_settings(worker_settings), docs_enabled=True) as api:
        for path in DOCS:
            r = await api.get(path)
            assert r.status_code == 200, path
        assert "/lightrag/ingest-async" in (await api.get("/openapi.json")).json()["paths"]


async def test_the_openapi_pages_are_gone_when_disabled(worker_settings: Any) -> None:
    async with asgi_client(api_settings(worker_settings), docs_enabled=False) as api:
        for path in DOCS:
            assert (await api.get(path)).status_code == 401, path
            assert (await api.get(path, headers=HEADERS)).status_code == 404, path


async def test_liveness_needs_no_key_and_no_dependency(worker_settings: Any) -> None:
    down = dataclasses.replace(worker_settings, redis_port=free_port(), postgres_port=free_port())
    async with asgi_client(api_settings(down)) as api:
        r = await api.get("/health")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        detailed = await api.get("/health/detailed", headers=HEADERS)
    assert detailed.status_code == 503
    out = detailed.json()
    assert out["status"] == "degraded"
    assert out["redis"]["ok"] is False
    assert out["postgres"]["ok"] is False


async def test_detailed_health_reports_workers_and_queues(api: Any, redis_client: Any) -> None:
    from shield_orchestrator import keys
    from shield_orchestrator.services.heartbeat import WorkerBeat, beat

    now = time.time()
    for n, rate in ((1, 2.5), (2, 4.0)):
        await beat(redis_client, WorkerBeat(
            consumer=f"host:{n}", host="host", pid=n, started_at=now - 60, last_seen=now - 1,
            processed=10 * n, failed=0, in_flight=0, rate=rate, engine="noop", state="running",
        ), interval_s=30)  # fmt: skip
    chunks = [{"text": f"t{i}", "source_uri": "u"} for i in range(3)]
    r = await api.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "t"}, headers=HEADERS
    )
    assert r.status_code == 202
    await redis_client.xgroup_create(
        keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP, id="0"
    )
    await redis_client.xreadgroup(
        keys.CONSUMER_GROUP, "host:1", {keys.ingestion_stream(keys.WORKSPACES[0]): ">"}, 1
    )
    await redis_client.xadd(keys.DEAD_LETTER_STREAM, {"job_id": "j", "chunk_id": "c"})

    out = (await api.get("/health/detailed", headers=HEADERS)).json()

    assert out["status"] == "ok"
    assert out["redis"]["ok"] is True
    assert out["postgres"]["ok"] is True
    assert (out["queue_depth"], out["pending"], out["dead_letter"]) == (3, 1, 1)
    assert sorted(w["consumer"] for w in out["workers"]) == ["host:1", "host:2"]
    assert all(1 <= w["last_seen_age_s"] < 30 for w in out["workers"])
    assert out["processing_rate_per_s"] == 6.5


async def test_metrics_count_requests_by_route_and_status(api: Any) -> None:
    await api.get(f"/jobs/{JOB}", headers=HEADERS)
    await api.get("/jobs/nope", headers=HEADERS)
    await api.get("/health")
    r = await api.get("/metrics", headers=HEADERS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'shield_api_requests_total{method="GET",route="/jobs/{job_id}",status="404"} 1.0' in text
    assert 'shield_api_requests_total{method="GET",route="/jobs/{job_id}",status="422"} 1.0' in text
    assert 'shield_api_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'shield_api_request_duration_seconds_count{method="GET",route="/health"} 1.0' in text
    assert "shield_queue_depth 0.0" in text
    assert "shield_queue_pending 0.0" in text


def test_the_api_refuses_to_start_without_keys(worker_settings: Any) -> None:
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match="SHIELD_API_KEYS"):
        create_app(worker_settings)
