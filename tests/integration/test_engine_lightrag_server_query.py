"""The ``lightrag_server`` engine's ``query``: POST /query of a LightRAG Server double that
speaks lightrag-hku 1.5.7's wire format (lightrag/api/routers/query_routes.py).

Proved: the request carries the mode, only_need_context and top_k and the API key; the answer
or the context is the server's ``response``; a 422 (a query too short for RAG) is a refusal
(PermanentChunkError: QueryRejected at the API), a 500 a failure (ChunkError: QueryFailed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shield_orchestrator.engines.base import ChunkError, ChunkInput, PermanentChunkError
from shield_orchestrator.engines.lightrag_server import LightRAGServerEngine
from shield_orchestrator.services.queries import QueryRequest

from tests.doubles.lightrag_server_double import LightRAGServerDouble, lightrag_server_double
from tests.integration.test_engine_lightrag_server import API_KEY, config

pytestmark = pytest.mark.integration


@pytest.fixture
async def served() -> AsyncIterator[tuple[LightRAGServerDouble, LightRAGServerEngine]]:
    with lightrag_server_double(api_key=API_KEY, enqueue_s=0.01, process_s=0.01) as double:
        engine = LightRAGServerEngine(config(double))
        await engine.start()
        try:
            yield double, engine
        finally:
            await engine.close()


async def test_the_answer_and_the_context_are_the_servers_response(
    served: tuple[LightRAGServerDouble, LightRAGServerEngine],
) -> None:
    double, engine = served
    text = "Temporal schedules the repository indexers."
    await engine.process(ChunkInput("job", "c1", text, "file:///a.txt"))
    context = await engine.query(QueryRequest("Who schedules indexers?", "default", "local",
                                              True, top_k=3))  # fmt: skip
    assert (context.text, context.context_only, context.label) == (text, True, engine.label)
    answer = await engine.query(QueryRequest("What does Temporal do?", "default"))
    assert answer.text == f"double answer: {text}"
    assert answer.context_only is False
    assert double.queries == [
        {"query": "Who schedules indexers?", "mode": "local", "include_references": False,
         "only_need_context": True, "top_k": 3},
        {"query": "What does Temporal do?", "mode": "mix", "include_references": False,
         "only_need_context": False},
    ]  # fmt: skip
    assert set(double.api_keys_seen) == {API_KEY}


async def test_a_refused_query_is_permanent_and_a_server_error_is_not(
    served: tuple[LightRAGServerDouble, LightRAGServerEngine],
) -> None:
    double, engine = served
    with pytest.raises(PermanentChunkError, match="RAG query is too short"):
        await engine.query(QueryRequest("ab", "default"))
    double.fail_query_next.append(500)
    with pytest.raises(ChunkError, match="HTTP 500"):
        await engine.query(QueryRequest("What is stored?", "default"))
