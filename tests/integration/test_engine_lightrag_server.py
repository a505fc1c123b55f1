"""The ``lightrag_server`` engine against a LightRAG Server double (real HTTP, real wire format).

The double (tests/doubles/lightrag_server_double.py) answers POST /documents/text and
GET /documents/track_status/{id} as lightrag-hku 1.5.7's server does; these tests prove how
each answer becomes a pool decision and that the API key is sent but never logged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from shield_orchestrator.engines.base import (
    ChunkError,
    ChunkInput,
    EngineOverloaded,
    PermanentChunkError,
)
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.lightrag_server import LightRAGServerEngine, file_source

from tests.doubles.lightrag_server_double import LightRAGServerDouble, lightrag_server_double

pytestmark = pytest.mark.integration

API_KEY = "sekret-Key-7f3a"


@pytest.fixture(scope="module")
def server() -> Iterator[LightRAGServerDouble]:
    with lightrag_server_double(api_key=API_KEY, enqueue_s=0.05, process_s=0.1) as double:
        yield double


@pytest.fixture
def double(server: LightRAGServerDouble) -> LightRAGServerDouble:
    server.fail_next.clear()
    server.fail_track_next.clear()
    server.fail_when.clear()
    return server


def config(double: LightRAGServerDouble, **changes: object) -> EngineConfig:
    base = EngineConfig(
        lightrag_server_url=double.url,
        lightrag_api_key=API_KEY,
        lightrag_request_timeout_s=5,
        lightrag_track_timeout_s=10,
        lightrag_poll_s=0.02,
        lightrag_max_in_flight=4,
    )
    return base.with_changes(**changes)


@pytest.fixture
async def engine(double: LightRAGServerDouble) -> AsyncIterator[LightRAGServerEngine]:
    eng = LightRAGServerEngine(config(double))
    await eng.start()
    yield eng
    await eng.close()


def chunk(chunk_id: str, text: str, attempt: int = 1) -> ChunkInput:
    return ChunkInput(
        job_id="job-s",
        chunk_id=chunk_id,
        text=text,
        source_uri="s3://bucket/docs/guide.md",
        attempt=attempt,
    )


async def test_a_processed_document_is_a_chunk_result(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    polls = double.calls["track_status"]
    result = await engine.process(chunk("c1", "Alice founded Acme in Paris."))
    assert result.document_id.startswith("doc-")
    assert double.docs[result.document_id].file_path == file_source(chunk("c1", ""))
    assert result.detail["track_id"].startswith("insert_")
    assert result.detail["engine"] == "lightrag_server"
    assert double.calls["track_status"] - polls >= 2  # it waited through pending/processing
    assert set(double.api_keys_seen) == {API_KEY}  # the key is sent on every request


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (429, EngineOverloaded),
        (503, EngineOverloaded),
        (500, ChunkError),
        (409, ChunkError),  # a scan or delete holds the pipeline: retry later
        (401, PermanentChunkError),
        (422, PermanentChunkError),
        (400, PermanentChunkError),
    ],
)
async def test_insert_answers_map_to_pool_decisions(
    engine: LightRAGServerEngine,
    double: LightRAGServerDouble,
    status: int,
    decision: type[Exception],
) -> None:
    double.fail_next.append(status)
    with pytest.raises(decision) as info:
        await engine.process(chunk(f"c-{status}", f"Status {status} text."))
    assert type(info.value) is decision  # ChunkError, not a subclass's decision
    assert f"HTTP {status}" in str(info.value)
    # the next call goes through: nothing was stored for the refused request
    assert (await engine.process(chunk(f"c-{status}", f"Status {status} text."))).document_id


async def test_a_wrong_api_key_is_permanent(double: LightRAGServerDouble) -> None:
    eng = LightRAGServerEngine(config(double, lightrag_api_key="not-the-key"))
    await eng.start()
    try:
        with pytest.raises(PermanentChunkError, match=r"HTTP 403.*Invalid API Key"):
            await eng.process(chunk("c-key", "Wrong Key text."))
    finally:
        await eng.close()


async def test_a_failed_document_is_a_chunk_error_with_the_servers_message(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    double.fail_when["Mallory"] = "LLM func: Ollama chat answered 500: model crashed"
    with pytest.raises(ChunkError) as info:
        await engine.process(chunk("c-fail", "Mallory breaks Everything."))
    assert type(info.value) is ChunkError
    assert "Ollama chat answered 500: model crashed" in str(info.value)


async def test_transient_poll_failures_are_waited_out(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    double.fail_track_next.extend([503, 500, 429])
    result = await engine.process(chunk("c-poll", "Bob polls Berlin."))
    assert result.document_id.startswith("doc-")
    assert not double.fail_track_next


async def test_a_track_that_never_finishes_is_a_chunk_error(double: LightRAGServerDouble) -> None:
    eng = LightRAGServerEngine(config(double, lightrag_track_timeout_s=0.2))
    await eng.start()
    double.process_s = 30
    try:
        with pytest.raises(ChunkError, match="not processed after"):
            await eng.process(chunk("c-slow", "Slow Snail text."))
    finally:
        double.process_s = 0.1
        await eng.close()


async def test_identical_content_and_a_lost_answer_count_once(
    engine: LightRAGServerEngine,
) -> None:
    first = await engine.process(chunk("c-a", "Erin likes Tokyo."))
    # the same text as another chunk: LightRAG stores a "dup" record naming the original
    second = await engine.process(chunk("c-b", "Erin likes Tokyo."))
    assert second.detail["duplicate_of"] == first.document_id
    # the same chunk and attempt again (its answer was lost): 409 "(Status: processed)"
    again = await engine.process(chunk("c-a", "Erin likes Tokyo."))
    assert again.detail["already_stored"] == file_source(chunk("c-a", ""))
    # a retry (next attempt) is a new file name: not refused
    retry = await engine.process(chunk("c-c", "Frank likes Kyoto.", attempt=2))
    assert retry.document_id.startswith("doc-")


async def test_the_api_key_is_never_logged(
    double: LightRAGServerDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    eng = LightRAGServerEngine(config(double))
    assert API_KEY not in repr(eng.config)
    await eng.start()
    try:
        await eng.process(chunk("c-log1", "Grace logs Nothing."))
        double.fail_next.append(500)
        with pytest.raises(ChunkError) as info:
            await eng.process(chunk("c-log2", "Heidi logs Less."))
        double.fail_track_next.append(503)
        await eng.process(chunk("c-log3", "Ivan logs Less."))
    finally:
        await eng.close()
    assert API_KEY not in str(info.value)
    assert caplog.records, "the engine and httpx logged something"
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.__dict__)
