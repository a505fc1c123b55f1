"""``lightrag_server``'s deletion against the LightRAG Server double (real HTTP, the wire format
of lightrag-hku 1.5.7's DELETE /documents/delete_document and GET /documents/pipeline_status):
what each answer and each history line becomes, and that a repeated deletion succeeds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from shield_orchestrator.engines.base import ChunkError, ChunkInput, DeleteInput, EngineOverloaded
from shield_orchestrator.engines.lightrag_server import LightRAGServerEngine

from tests.doubles.lightrag_server_double import LightRAGServerDouble, lightrag_server_double
from tests.integration.test_engine_lightrag_server import API_KEY, engine

pytestmark = pytest.mark.integration
__all__ = ["engine"]  # the fixture (test_engine_lightrag_server.py), used by name


@pytest.fixture
def double() -> Iterator[LightRAGServerDouble]:
    with lightrag_server_double(
        api_key=API_KEY, enqueue_s=0.05, process_s=0.1, delete_s=0.1
    ) as server:
        yield server


async def _stored(engine: LightRAGServerEngine, n: int) -> str:
    chunk = ChunkInput(job_id="job-d", chunk_id=f"c{n}", text=f"Document {n}: Alice met Bob{n}.",
                       source_uri="repo:r/a.py")  # fmt: skip
    return (await engine.process(chunk)).document_id


def _request(*doc_ids: str) -> DeleteInput:
    return DeleteInput(
        job_id="job-x", chunk_id="c000001", doc_ids=doc_ids, source_uri="repo:r/a.py"
    )


async def test_documents_are_deleted_and_a_repeated_deletion_succeeds(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    ids = [await _stored(engine, n) for n in range(3)]
    result = await engine.delete(_request(ids[0], ids[1]))
    assert (result.deleted, result.absent) == (2, 0)
    assert "unverified" not in result.detail
    assert set(double.docs) == {ids[2]}
    assert double.calls["pipeline_status"] >= 1  # it waited for the background job
    again = await engine.delete(_request(ids[0], ids[1], "doc-never-stored"))
    assert (again.deleted, again.absent) == (0, 3)
    assert set(double.api_keys_seen) == {API_KEY}


async def test_a_busy_pipeline_is_overload_and_inserts_wait_for_a_deletion(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    """While a document is processed the server refuses the deletion (``busy``): the pool
    backs off without spending a retry. While the deletion runs, an insert gets 409 (a
    ChunkError: retried later)."""
    first = await _stored(engine, 1)
    pending = asyncio.create_task(_stored(engine, 2))
    await asyncio.sleep(0.02)  # POSTed, not processed yet
    with pytest.raises(EngineOverloaded, match="busy: Pipeline is busy with another operation"):
        await engine.delete(_request(first))
    second = await pending
    deletion = asyncio.create_task(engine.delete(_request(first)))
    await asyncio.sleep(0.03)
    with pytest.raises(ChunkError, match="HTTP 409"):
        await _stored(engine, 3)
    assert (await deletion).deleted == 1
    assert set(double.docs) == {second}


async def test_an_id_the_server_fails_to_delete_is_a_chunk_error(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    ids = [await _stored(engine, n) for n in range(2)]
    double.fail_delete_when[ids[1]] = "Refusing to delete: recovery anchors missing"
    with pytest.raises(ChunkError, match=r"did not delete 1 document.*recovery anchors"):
        await engine.delete(_request(ids[0], ids[1]))
    assert set(double.docs) == {ids[1]}
    double.fail_delete_when.clear()
    retried = await engine.delete(_request(ids[0], ids[1]))  # the pool's retry
    assert (retried.deleted, retried.absent) == (1, 1)
    assert double.docs == {}


async def test_bad_requests_are_refused_by_the_server_as_the_real_one_does(
    engine: LightRAGServerEngine, double: LightRAGServerDouble
) -> None:
    """The contract never sends these (messages.parse_delete_body refuses them first); the
    double answers as DeleteDocRequest's validator, and the engine makes it permanent."""
    from shield_orchestrator.engines.base import PermanentChunkError

    with pytest.raises(PermanentChunkError, match=r"HTTP 422.*must be unique"):
        await engine.delete(_request("doc-a", "doc-a"))
    assert double.deleting == []
