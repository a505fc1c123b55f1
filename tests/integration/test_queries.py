"""Queries forwarded over Redis to the process serving the workspace (services/queries.py).

Real parts: redis-server; for the graph, the offline engine (the real LightRAG pipeline, no
LLM) on PostgreSQL storages (KV, doc status, graph) with file vectors, filled through its
``process`` and answering through its ``query``, exactly what the worker hands the loop.
Proved: the context holds the ingested entities, the answer is labelled offline; a query for
workspace A is answered only by A's server; nobody serving -> QueryTimeout naming the
workspace, its request deleted; a failing answer is an error reply and the loop goes on; an
expired request is dropped unanswered; a dead server's pending request is swept; a server
that stops replies to what it could not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NO_GRAPH, NoopEngine
from shield_orchestrator.services import queries, query_server
from shield_orchestrator.services.queries import (
    QueryFailed,
    QueryRejected,
    QueryRequest,
    QueryTimeout,
    submit_query,
)
from shield_orchestrator.services.query_server import serve_queries

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

WS = "deletions"  # a workspace name the storage tests' config helper takes
TEXTS = [
    "Redis Streams deliver chunks to the worker pool. The worker pool calls LightRAG.",
    "PostgreSQL stores the job history. The API writes job rows to PostgreSQL.",
    "Ollama serves the language model. LightRAG sends extraction prompts to Ollama.",
]


@contextlib.asynccontextmanager
async def serving(
    redis: Any, workspace: str, consumer: str, answer: Callable[..., Any], **knobs: Any
) -> AsyncIterator[asyncio.Event]:
    """serve_queries as the worker runs it, stopped (and awaited) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_queries(redis, workspace, consumer, answer, stop, block_ms=100, **knobs)
    )
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_the_offline_graph_answers_with_its_entities(
    redis_client: Any, tmp_path: Path, postgres_srv: PostgresServer, pg_database: str
) -> None:
    from shield_orchestrator.engines.base import ChunkInput
    from shield_orchestrator.engines.lightrag_query import OFFLINE_ANSWER
    from shield_orchestrator.engines.offline import LABEL

    from tests.integration.test_engine_delete_documents import offline_engine

    engine = offline_engine(tmp_path, postgres_srv, pg_database)
    await engine.start()
    try:
        for n, text in enumerate(TEXTS):
            chunk = ChunkInput("job", f"c{n}", text, f"file:///t{n}.txt", workspace=WS)
            assert (await engine.process(chunk)).entities > 0
        stored = set(await engine.rag.get_graph_labels())
        async with serving(redis_client, WS, "host:1", engine.query):
            ask = QueryRequest("What does the worker pool call?", WS, "local", True)
            reply = await submit_query(redis_client, ask, timeout_s=60)
            assert (reply.context_only, reply.label, reply.served_by) == (True, LABEL, "host:1")
            found = {name for name in stored if name in reply.text}
            assert {"Worker Pool", "LightRAG"} <= found, reply.text

            answer = await submit_query(
                redis_client,
                QueryRequest("Who stores the job history?", WS, "hybrid", False, top_k=5),
                timeout_s=60,
            )
            assert answer.text.startswith(OFFLINE_ANSWER), answer.text
            assert "offline extraction (no LLM)" in answer.label
            assert "PostgreSQL" in answer.text

            with pytest.raises(QueryRejected, match="too short"):  # LightRAG's own rule
                await submit_query(redis_client, QueryRequest("ab", WS, "mix"), timeout_s=60)
            # the loop lives on after the refusal
            again = await submit_query(redis_client, ask, timeout_s=60)
            assert again.text == reply.text
    finally:
        await engine.close()
    assert await redis_client.xlen(keys.query_stream(WS)) == 0  # answered entries deleted


async def test_a_query_reaches_only_its_workspaces_server(redis_client: Any) -> None:
    engines = {"alpha": NoopEngine(), "beta": NoopEngine()}
    async with (
        serving(redis_client, "alpha", "host:1", engines["alpha"].query),
        serving(redis_client, "beta", "host:2", engines["beta"].query),
    ):
        for _ in range(3):
            reply = await submit_query(redis_client, QueryRequest("who am I?", "alpha"), 10)
            assert (reply.served_by, reply.text) == ("host:1", NO_GRAPH)
        reply = await submit_query(redis_client, QueryRequest("who am I?", "beta"), 10)
        assert reply.served_by == "host:2"
    assert engines["alpha"].queries == {"alpha": 3}
    assert engines["beta"].queries == {"beta": 1}


async def test_nobody_serving_the_workspace_is_a_timeout_naming_it(redis_client: Any) -> None:
    with pytest.raises(QueryTimeout, match="no worker process serving workspace 'orphan'"):
        await submit_query(redis_client, QueryRequest("anyone there?", "orphan"), timeout_s=0.3)
    # the request is deleted: a server that appears later does not answer a gone client
    assert await redis_client.xlen(keys.query_stream("orphan")) == 0


async def test_a_failing_answer_is_an_error_reply_and_the_loop_goes_on(redis_client: Any) -> None:
    calls = 0

    async def flaky(request: QueryRequest) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the graph is on fire")
        return await NoopEngine().query(request)

    async with serving(redis_client, "ws", "host:1", flaky):
        with pytest.raises(QueryFailed, match=r"RuntimeError: the graph is on fire"):
            await submit_query(redis_client, QueryRequest("first", "ws"), 10)
        reply = await submit_query(redis_client, QueryRequest("second", "ws"), 10)
        assert reply.text == NO_GRAPH


async def test_an_expired_request_is_dropped_unanswered(redis_client: Any) -> None:
    engine = NoopEngine()
    stale = QueryRequest("too late", "ws", deadline=time.time() - 1, id="stale1")
    await redis_client.xadd(keys.query_stream("ws"), queries.encode_request(stale))
    async with serving(redis_client, "ws", "host:1", engine.query):
        fresh = await submit_query(redis_client, QueryRequest("in time", "ws"), 10)
        assert fresh.text == NO_GRAPH
    assert engine.queries == {"ws": 1}  # only the fresh one reached the engine
    assert await redis_client.exists(keys.query_reply("stale1")) == 0
    assert await redis_client.xlen(keys.query_stream("ws")) == 0


async def test_a_dead_servers_pending_request_is_swept(redis_client: Any) -> None:
    stream = keys.query_stream("ws")
    await query_server.ensure_group(redis_client, "ws")
    await redis_client.xadd(stream, queries.encode_request(QueryRequest("q", "ws", id="x")))
    # a server read it and died before answering
    await redis_client.xreadgroup(keys.CONSUMER_GROUP, "dead:1", {stream: ">"}, count=1)
    assert (await redis_client.xpending(stream, keys.CONSUMER_GROUP))["pending"] == 1
    assert await query_server.sweep(redis_client, "ws", "host:1", idle_s=0) == 1
    assert (await redis_client.xpending(stream, keys.CONSUMER_GROUP))["pending"] == 0
    assert await redis_client.xlen(stream) == 0


async def test_a_stopping_server_replies_to_what_it_could_not_finish(redis_client: Any) -> None:
    started = asyncio.Event()

    async def stuck(request: QueryRequest) -> Any:
        started.set()
        await asyncio.Event().wait()

    async with serving(redis_client, "ws", "host:1", stuck, grace_s=0.1) as stop:
        waiting = asyncio.create_task(submit_query(redis_client, QueryRequest("q", "ws"), 30))
        await asyncio.wait_for(started.wait(), 10)
        stop.set()
        with pytest.raises(QueryFailed, match="the worker serving workspace 'ws' stopped"):
            await asyncio.wait_for(waiting, 10)
