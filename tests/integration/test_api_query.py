"""POST /lightrag/query against real Redis (ASGITransport, lifespan run), answered by a
services/queries.serve_queries loop in the same event loop: what a worker process runs for the
workspace, with the noop engine (no graph: it says so).

What is proved: the answer and the context come back with the engine's label and who answered;
an unknown workspace is a 422 naming the declared ones; nobody serving is a 504 naming the
workspace; an engine's refusal is a 422 on ``query``, its failure a 502; no key, 401.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from shield_orchestrator.api.models import WORKSPACES
from shield_orchestrator.engines.noop import NO_GRAPH, NoopEngine
from shield_orchestrator.errors import PermanentChunkError
from shield_orchestrator.services.queries import QueryRequest
from shield_orchestrator.services.query_server import serve_queries

from tests.support.api import HEADERS, asgi_client

pytestmark = pytest.mark.integration

URL = "/lightrag/query"
WS = WORKSPACES[0]


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any) -> AsyncIterator[Any]:
    from tests.support.api import api_settings

    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


@pytest.fixture
async def worker(redis_client: Any) -> AsyncIterator[NoopEngine]:
    """The query loop of a process serving the first workspace, engine noop."""
    engine, stop = NoopEngine(), asyncio.Event()
    task = asyncio.create_task(
        serve_queries(redis_client, WS, "host:1", engine.query, stop, block_ms=100)
    )
    yield engine
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_the_answer_and_the_context_come_from_the_workspaces_worker(
    api: Any, worker: NoopEngine
) -> None:
    r = await api.post(URL, json={"query": "What is in the graph?"}, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "workspace": WS,
        "mode": "mix",
        "engine": NoopEngine.label,
        "answer": NO_GRAPH,
        "context": None,
        "served_by": "host:1",
    }
    body = {"query": "Who?", "workspace": WS, "mode": "local", "only_need_context": True,
            "top_k": 5}  # fmt: skip
    r = await api.post(URL, json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert (r.json()["answer"], r.json()["context"], r.json()["mode"]) == (None, NO_GRAPH, "local")
    assert worker.queries == {WS: 2}


async def test_bad_input_is_a_422_naming_the_field(api: Any, worker: NoopEngine) -> None:
    r = await api.post(URL, json={"query": "q?", "workspace": "nope"}, headers=HEADERS)
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "workspace"]
    assert f"known: {', '.join(WORKSPACES)}" in item["msg"]
    r = await api.post(URL, json={"query": "q?", "mode": "bypass"}, headers=HEADERS)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "mode"]
    r = await api.post(URL, json={"query": "   "}, headers=HEADERS)
    assert r.status_code == 422
    assert worker.queries == {}
    r = await api.post(URL, json={"query": "q?"})
    assert r.status_code == 401


async def test_nobody_serving_the_workspace_is_a_504_naming_it(api: Any) -> None:
    r = await api.post(URL, json={"query": "anyone?", "timeout_s": 1}, headers=HEADERS)
    assert r.status_code == 504
    assert f"serving workspace {WS!r}" in r.json()["detail"]


async def test_the_engines_refusal_is_a_422_and_its_failure_a_502(
    api: Any, redis_client: Any
) -> None:
    async def engine(request: QueryRequest) -> Any:
        if request.query.startswith("refuse"):
            raise PermanentChunkError("LightRAG refuses the query: RAG query is too short")
        raise ConnectionError("Ollama is down")

    stop = asyncio.Event()
    task = asyncio.create_task(serve_queries(redis_client, WS, "host:9", engine, stop,
                                             block_ms=100))  # fmt: skip
    try:
        r = await api.post(URL, json={"query": "refuse me"}, headers=HEADERS)
        assert r.status_code == 422
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", "query"]
        assert "too short (answered by host:9)" in item["msg"]
        r = await api.post(URL, json={"query": "fail me"}, headers=HEADERS)
        assert r.status_code == 502
        assert r.json()["detail"] == "ConnectionError: Ollama is down (answered by host:9)"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
