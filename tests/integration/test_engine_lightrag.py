"""The ``lightrag`` engine: real lightrag-hku, its real Ollama binding against the Ollama double.

One engine (file storages) per module; PostgreSQL storages in their own module-scoped engine
against the session's real PostgreSQL (file vectors: Debian 12's PostgreSQL 15 has no pgvector).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lightrag import QueryParam
from shield_orchestrator.engines.base import ChunkError, ChunkInput, EngineOverloaded
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine, document_id
from shield_orchestrator.errors import ConfigError

from tests.doubles.ollama_double import OllamaDouble, expected_entities, ollama_double
from tests.support.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TEXT = "Alice founded Acme in Paris. Acme builds Rockets for Mars missions."
POISON = "Mallory breaks Everything on purpose."


@pytest.fixture(scope="module")
def double() -> Iterator[OllamaDouble]:
    with ollama_double(embedding_dim=16, fail_when={"Mallory": 500}) as d:
        yield d


def _config(double: OllamaDouble, workdir: Path, **changes: object) -> EngineConfig:
    base = EngineConfig(
        workspace="itest",
        working_dir=str(workdir),
        storage="file",
        vector_storage="file",
        tokenizer="bytes",
        ollama_endpoint=double.url,
        ollama_llm_model="double:latest",
        ollama_embedding_model="double-embed",
        ollama_embedding_dim=16,
        ollama_llm_timeout_s=5,
        ollama_embedding_timeout_s=5,
        ollama_api_key="ollama-key",
        llm_model_max_async=4,
        max_parallel_insert=4,
        status_poll_s=0.02,
        redis_url=None,
    )
    return dataclasses.replace(base, **changes)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(
    double: OllamaDouble, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LightRAGEngine]:
    eng = LightRAGEngine(_config(double, tmp_path_factory.mktemp("lightrag")))
    await eng.start()
    yield eng
    await eng.close()


def _chunk(chunk_id: str, text: str, job: str = "job-1") -> ChunkInput:
    return ChunkInput(
        job_id=job, chunk_id=chunk_id, text=text, source_uri="s3://b/doc.txt", workspace="itest"
    )


async def test_a_chunk_yields_the_extracted_entities_and_is_queryable(
    engine: LightRAGEngine, double: OllamaDouble
) -> None:
    result = await engine.process(_chunk("c1", TEXT))
    assert result.entities == len(expected_entities(TEXT)) == 5
    assert result.relations == 4
    assert result.document_id == document_id(_chunk("c1", TEXT))
    graph_labels = set(await engine.rag.get_graph_labels())
    assert set(expected_entities(TEXT)) <= graph_labels
    context = await engine.rag.aquery(
        "Who founded Acme?",
        param=QueryParam(
            mode="local",
            only_need_context=True,
            enable_rerank=False,
            ll_keywords=["Acme"],
            hl_keywords=["founding"],
        ),
    )
    assert "Alice" in str(context)
    assert double.calls["chat"] >= 1
    assert double.calls["embed"] >= 1
    assert double.api_keys_seen == {"ollama-key"}  # the API key reaches Ollama


async def test_redelivery_of_a_processed_chunk_does_no_work(
    engine: LightRAGEngine, double: OllamaDouble
) -> None:
    await engine.process(_chunk("c2", "Bob visits Berlin."))
    chats = double.calls["chat"]
    again = await engine.process(_chunk("c2", "Bob visits Berlin."))
    assert again.entities == 2
    assert double.calls["chat"] == chats


async def test_one_ollama_client_per_engine(engine: LightRAGEngine, double: OllamaDouble) -> None:
    """Regression: lightrag.llm.ollama builds an ollama.AsyncClient per call, each loading the
    CA bundle on the event loop (~0.15 s stall per call, ~1.5 chunks/s per worker at most).
    Our binding keeps one client: sequential calls reuse one keep-alive connection."""
    double.connections.clear()
    for n in range(3):
        await engine.process(_chunk(f"k{n}", f"Kim{n} visits Oslo{n}."))
    chats = {port for path, port in double.connections if path == "/api/chat"}
    assert len(chats) == 1


async def test_llm_failure_is_a_chunk_error_carrying_lightrags_message(
    engine: LightRAGEngine,
) -> None:
    with pytest.raises(ChunkError) as info:
        await engine.process(_chunk("c3", POISON))
    assert not isinstance(info.value, EngineOverloaded)
    assert "injected 500" in str(info.value)  # Ollama's error, as LightRAG recorded it


async def test_retry_after_failure_leaves_one_record(
    engine: LightRAGEngine, double: OllamaDouble
) -> None:
    chunk = _chunk("c4", "Mallory retries Something Else.")
    with pytest.raises(ChunkError):
        await engine.process(chunk)
    double.fail_when.pop("Mallory")
    try:
        result = await engine.process(dataclasses.replace(chunk, attempt=2))
    finally:
        double.fail_when["Mallory"] = 500
    assert result.entities == 3
    counts = await engine.rag.doc_status.get_status_counts()
    assert counts.get("failed", 0) == 1  # only c3 (never retried); c4 has one processed record
    doc = await engine.rag.doc_status.get_by_id(document_id(chunk))
    assert doc is not None
    assert doc["status"] == "processed"


async def test_ollama_429_and_503_back_the_pool_off(
    engine: LightRAGEngine, double: OllamaDouble
) -> None:
    for n, status in enumerate((429, 503)):
        double.fail_next.append(status)
        with pytest.raises(EngineOverloaded) as info:
            await engine.process(_chunk(f"c5-{n}", f"Carol Meets Dave number {n}."))
        assert f"answered {status}" in str(info.value)
    # the backed-off chunk succeeds when called again (no duplicate record in the way)
    result = await engine.process(_chunk("c5-0", "Carol Meets Dave number 0."))
    assert result.entities == 3


async def test_identical_content_in_another_job_reports_the_original(
    engine: LightRAGEngine,
) -> None:
    first = await engine.process(_chunk("c6", "Erin likes Tokyo.", job="job-a"))
    second = await engine.process(_chunk("c6", "Erin likes Tokyo.", job="job-b"))
    assert second.detail["duplicate_of"] == first.document_id
    assert (second.entities, second.relations) == (first.entities, first.relations)


async def test_chunks_arriving_together_share_an_enqueue_call_and_keep_their_outcomes(
    engine: LightRAGEngine,
) -> None:
    """Coalesced enqueue (engines/lightrag_enqueue.py): fewer LightRAG enqueue calls than
    chunks, yet each chunk keeps its own id, its own failure and its own duplicate mapping."""
    from lightrag.base import DocStatus

    ok = [_chunk(f"g{n}", f"Gina{n} visits Lima{n}.", job="job-g") for n in range(4)]
    twin_a = _chunk("t1", "Zed paints Quito.", job="job-t")
    twin_b = _chunk("t1", "Zed paints Quito.", job="job-u")  # identical content, other job
    poison = _chunk("g-bad", "Mallory spoils Group Commit.", job="job-g")
    redelivered = ok[0]  # the same chunk twice at once (a redelivery)
    before = engine.enqueue_calls
    chunks = [*ok, twin_a, twin_b, poison, redelivered]
    results = await asyncio.gather(*(engine.process(c) for c in chunks), return_exceptions=True)
    assert engine.enqueue_calls - before <= 2 < len(chunks)
    by_chunk = dict(zip(range(len(chunks)), results, strict=True))
    for n, c in enumerate(ok):
        result = by_chunk[n]
        assert not isinstance(result, BaseException), result
        assert result.document_id == document_id(c)
        assert result.entities == 2
    assert by_chunk[len(chunks) - 1] == by_chunk[0]  # the redelivery shares the outcome
    a, b = by_chunk[4], by_chunk[5]
    assert not isinstance(a, BaseException)
    assert not isinstance(b, BaseException)
    assert a.document_id == b.document_id  # one stored document for the identical content
    assert {a.detail.get("duplicate_of"), b.detail.get("duplicate_of")} == {None, a.document_id}
    assert isinstance(by_chunk[6], ChunkError)
    assert "injected 500" in str(by_chunk[6])
    failed = await engine.rag.doc_status.get_docs_by_statuses([DocStatus.FAILED])
    assert document_id(poison) in failed
    assert not [k for k, v in failed.items() if (v.metadata or {}).get("is_duplicate")]


async def test_a_finished_document_is_reported_without_waiting_for_the_poll(
    double: OllamaDouble, tmp_path: Path
) -> None:
    """LightRAG's own write of processed/failed wakes the engine (its doc-status hook): with a
    one-hour poll period, results and failures still come back (wait_for only bounds a broken
    run)."""
    eng = LightRAGEngine(_config(double, tmp_path / "w", status_poll_s=3600.0))
    await eng.start()
    try:
        result = await asyncio.wait_for(eng.process(_chunk("h1", "Hana meets Ivo.")), 60)
        assert (result.entities, result.relations) == (2, 1)
        with pytest.raises(ChunkError, match="injected 500"):
            await asyncio.wait_for(eng.process(_chunk("h2", "Mallory hooks Nothing.")), 60)
    finally:
        await eng.close()


async def test_tiktoken_without_a_seeded_cache_refuses_to_start(
    double: OllamaDouble, tmp_path: Path
) -> None:
    eng = LightRAGEngine(
        _config(
            double, tmp_path / "w", tokenizer="tiktoken", tiktoken_cache_dir=str(tmp_path / "empty")
        )
    )
    with pytest.raises(ConfigError, match="pre-seeds it"):
        await eng.start()


async def test_postgres_storages(
    double: OllamaDouble, postgres_srv: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    """PGKVStorage, PGDocStatusStorage, PGTableGraphStorage on the session's PostgreSQL."""
    import asyncpg

    config = _config(
        double,
        tmp_path / "pg",
        storage="postgres",
        vector_storage="file",
        postgres_host="127.0.0.1",
        postgres_port=postgres_srv.port,
        postgres_user=postgres_srv.user,
        postgres_password=postgres_srv.password,
        postgres_db=pg_database,
        workspace="pgtest",
    )
    eng = LightRAGEngine(config)
    await eng.start()
    try:
        chunk = dataclasses.replace(_chunk("p1", TEXT), workspace="pgtest")
        result = await eng.process(chunk)
        assert (result.entities, result.relations) == (5, 4)
        with pytest.raises(ChunkError):
            await eng.process(dataclasses.replace(_chunk("p2", POISON), workspace="pgtest"))
        assert type(eng.rag.doc_status).__name__ == "PGDocStatusStorage"
        assert type(eng.rag.chunk_entity_relation_graph).__name__ == "PGTableGraphStorage"
        assert set(expected_entities(TEXT)) <= set(await eng.rag.get_graph_labels())
    finally:
        await eng.close()
    conn = await asyncpg.connect(postgres_srv.dsn(pg_database))
    try:
        rows = await conn.fetch(
            "SELECT id, status FROM lightrag_doc_status WHERE workspace=$1", "pgtest"
        )
    finally:
        await conn.close()
    assert {r["id"]: r["status"] for r in rows} == {
        document_id(chunk): "processed",
        document_id(dataclasses.replace(_chunk("p2", POISON), workspace="pgtest")): "failed",
    }
