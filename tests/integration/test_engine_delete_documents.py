"""Deleting documents through the pool (issue 16): a ``delete_document`` job, created by the
same JobRegistry.create as ingestion, executed by the workspace's owning process.

Real parts: redis-server, PostgreSQL (jobs and LightRAG's KV, doc status and graph storages:
the default ``orchestrator_engine_storage: postgres``), a WorkerPool with the offline engine
(the real LightRAG pipeline, no LLM). Vectors: Milvus Lite (the default on Debian 12) in the
pool test, the file storage elsewhere (Milvus Lite's start is slow).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.pools import running_pool, wait_for
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

WS = "deletions"
TEXTS = [
    "Redis Streams deliver chunks to the worker pool. The worker pool calls LightRAG.",
    "PostgreSQL stores the job history. The API writes job rows to PostgreSQL.",
    "Ollama serves the language model. LightRAG sends extraction prompts to Ollama.",
]


def offline_engine(
    tmp_path: Path,
    postgres_srv: PostgresServer,
    database: str,
    workspace: str = WS,
    vectors: str = "file",
) -> Any:
    """The offline engine on PostgreSQL storages (``vectors``: file or milvus) for ``workspace``."""
    from shield_orchestrator.engines.offline import OfflineEngine

    from tests.integration.test_engine_storages import _config

    config = _config(tmp_path, postgres_srv, database, workspace=workspace, vector_storage=vectors)
    return OfflineEngine(config)


async def _finished(registry: Any, job_id: str) -> str:
    from shield_orchestrator.services.job_status import fetch_job

    status = ""

    async def terminal() -> bool:
        nonlocal status
        view = await fetch_job(registry.redis, registry.db, job_id)
        status = "" if view is None else view.status.value
        return view is not None and view.status.is_terminal

    await wait_for(terminal, timeout_s=120, what=f"job {job_id} terminal")
    return status


async def _ingest(registry: Any, texts: list[str], source: str) -> str:
    from shield_orchestrator.services.job_registry import NewChunk, NewJob

    chunks = [NewChunk(t, f"file:///{source}{n}.txt") for n, t in enumerate(texts)]
    return (await registry.create(NewJob(chunks, "text", WS))).job_id


async def _delete(registry: Any, doc_ids: list[list[str]]) -> str:
    from shield_orchestrator.services.job_registry import NewDeletion, NewJob
    from shield_orchestrator.services.messages import DELETE_DOCUMENT

    entries = [NewDeletion(ids, f"file:///gone{n}") for n, ids in enumerate(doc_ids)]
    return (await registry.create(NewJob(entries, "text", WS, kind=DELETE_DOCUMENT))).job_id


async def stored(rag: Any, doc_id: str) -> dict[str, Any]:
    """What LightRAG holds of a document: status row, full doc, its chunks' KV rows."""
    status = await rag.doc_status.get_by_id(doc_id)
    chunk_ids = list((status or {}).get("chunks_list") or [])
    chunks = [c for c in await rag.text_chunks.get_by_ids(chunk_ids) if c] if chunk_ids else []
    return {
        "status": None if status is None else str(status.get("status")),
        "full_doc": await rag.full_docs.get_by_id(doc_id) is not None,
        "chunk_ids": chunk_ids,
        "chunks": len(chunks),
    }


async def entity_names(rag: Any, doc_id: str) -> set[str]:
    """The entities LightRAG recorded for a document (its full_entities row)."""
    row = await rag.full_entities.get_by_id(doc_id) or {}
    return set(row.get("entity_names") or [])


@pytest.mark.parametrize("vectors", ["file", "milvus"])
async def test_a_document_deleted_through_the_pool_leaves_lightrag_and_a_redelete_succeeds(
    vectors: str,
    tmp_path: Path,
    postgres_srv: PostgresServer,
    pg_database: str,
    pg_pool: Any,
    redis_client: Any,
    redis_srv: RedisServer,
) -> None:
    from shield_orchestrator.services.job_registry import JobRegistry
    from shield_orchestrator.services.messages import chunk_document_id

    registry = JobRegistry(redis_client, pg_pool, max_queue_pending=10_000,
                           idempotency_ttl_s=60)  # fmt: skip
    engine = offline_engine(tmp_path, postgres_srv, pg_database, vectors=vectors)
    async with running_pool(redis_srv, engine=engine, db=pg_pool, workspace=WS, timeout_s=60.0):
        job = await _ingest(registry, TEXTS, "a")
        assert await _finished(registry, job) == "completed"
        docs = [chunk_document_id(job, f"c{n:06d}") for n in (1, 2, 3)]
        before = [await stored(engine.rag, d) for d in docs]
        assert all(b["status"] == "processed" and b["full_doc"] and b["chunks"] for b in before)
        for b in before:  # the chunks' vectors are there before the deletion
            assert [v for v in await engine.rag.chunks_vdb.get_by_ids(b["chunk_ids"]) if v]
        names = [await entity_names(engine.rag, d) for d in docs]
        only_deleted = (names[0] | names[1]) - names[2]
        assert only_deleted
        assert all([await engine.rag.chunk_entity_relation_graph.has_node(n)
                    for n in only_deleted])  # fmt: skip

        deletion = await _delete(registry, [[docs[0]], [docs[1]]])
        assert await _finished(registry, deletion) == "completed"
        row = await pg_pool.fetchrow("SELECT kind, chunks_total FROM jobs WHERE job_id = $1",
                                     deletion)  # fmt: skip
        assert (row["kind"], row["chunks_total"]) == ("delete", 2)
        for doc_id, old in zip(docs[:2], before, strict=False):
            assert await stored(engine.rag, doc_id) == {
                "status": None, "full_doc": False, "chunk_ids": [], "chunks": 0,
            }  # fmt: skip
            assert [c for c in await engine.rag.text_chunks.get_by_ids(old["chunk_ids"]) if c] == []
            assert [v for v in await engine.rag.chunks_vdb.get_by_ids(old["chunk_ids"]) if v] == []
        # entities only the deleted documents named left the graph; the kept one's stayed
        graph = engine.rag.chunk_entity_relation_graph
        assert not any([await graph.has_node(n) for n in only_deleted])
        assert all([await graph.has_node(n) for n in names[2]])
        kept = await stored(engine.rag, docs[2])
        assert kept == before[2]  # the third document is untouched

        # A retried or repeated deletion (ids already gone, one never known): success.
        again = await _delete(registry, [[docs[0], docs[1], "shield-never-stored"]])
        assert await _finished(registry, again) == "completed"
        failures = await pg_pool.fetchval(
            "SELECT count(*) FROM chunk_failures WHERE job_id = ANY($1::uuid[])",
            [deletion, again],
        )
        assert failures == 0

        # Deletion while chunks are being ingested in the same process: the engine runs the
        # deletion on an idle pipeline (its gate), every job completes, nothing is lost.
        more = [f"Document {i}: Service{i} talks to Node{i % 5}. Node{i % 5} keeps Item{i}."
                for i in range(24)]  # fmt: skip
        busy = await _ingest(registry, more, "busy")
        racing = await _delete(registry, [[docs[2]]])
        statuses = await asyncio.gather(_finished(registry, busy), _finished(registry, racing))
        assert statuses == ["completed", "completed"]
        assert (await stored(engine.rag, docs[2]))["status"] is None
        ingested = [await stored(engine.rag, chunk_document_id(busy, f"c{n:06d}"))
                    for n in range(1, 25)]  # fmt: skip
        assert all(s["status"] == "processed" and s["chunks"] for s in ingested)


async def test_lightrag_refuses_a_deletion_while_its_pipeline_runs_and_the_engine_waits(
    tmp_path: Path, postgres_srv: PostgresServer, pg_database: str
) -> None:
    """Why the engine's pipeline gate (engines/lightrag_enqueue.PipelineGate) exists.

    lightrag-hku 1.5.7: ``adelete_by_doc_id`` while the pipeline processes a document answers
    ``not_allowed`` (403) and deletes nothing. The engine's ``delete`` instead waits until the
    running pipeline run ends, holds back chunks arriving meanwhile, deletes on the idle
    pipeline, then lets them in. The LLM is held (an event) to keep the pipeline busy.
    """
    from shield_orchestrator.engines import lightrag_setup
    from shield_orchestrator.engines.base import ChunkInput, DeleteInput
    from shield_orchestrator.engines.lightrag_inproc import document_id
    from shield_orchestrator.engines.offline import OfflineEngine

    held = asyncio.Event()
    held.set()

    class HeldLLMEngine(OfflineEngine):
        def build_rag(self) -> Any:
            c = self.config.with_changes(tokenizer="bytes")
            inner = lightrag_setup.offline_llm(c.offline_max_entities)

            async def llm(*args: Any, **kwargs: Any) -> str:
                await held.wait()
                return await inner(*args, **kwargs)

            return lightrag_setup.build_rag(
                c, llm_func=llm, llm_kwargs={}, embedding=lightrag_setup.offline_embedding(c),
                llm_model_name="held-offline",
            )  # fmt: skip

    base = offline_engine(tmp_path, postgres_srv, pg_database)
    engine = HeldLLMEngine(base.config)

    def chunk(n: int, text: str) -> ChunkInput:
        return ChunkInput(job_id="j", chunk_id=f"c{n}", text=text, source_uri=f"d{n}",
                          workspace=WS)  # fmt: skip

    await engine.start()
    try:
        first = chunk(1, TEXTS[0])
        assert (await engine.process(first)).entities > 0
        pipeline = await _pipeline_status()
        held.clear()
        busy = asyncio.create_task(engine.process(chunk(2, TEXTS[1])))
        await wait_for(lambda: bool(pipeline.get("busy")), what="the pipeline busy")

        refused = await engine.rag.adelete_by_doc_id(document_id(first))
        assert (refused.status, refused.status_code) == ("not_allowed", 403)
        assert (await stored(engine.rag, document_id(first)))["status"] == "processed"

        request = DeleteInput("jd", "c000001", (document_id(first),), WS, "d1")
        deletion = asyncio.create_task(engine.delete(request))
        await wait_for(lambda: engine._gate.deleting, what="the deletion waiting at the gate")
        late = asyncio.create_task(engine.process(chunk(3, TEXTS[2])))
        for _ in range(20):  # while the LLM is held, nothing moves: the run has not ended
            await asyncio.sleep(0.01)
        assert not deletion.done()
        assert not busy.done()
        assert not late.done()
        assert engine.enqueue_calls == 2  # the late chunk is held back at the gate

        held.set()
        result, second, third = await asyncio.gather(deletion, busy, late)
        assert (result.deleted, result.absent) == (1, 0)
        assert second.entities > 0
        assert third.entities > 0
        assert (await stored(engine.rag, document_id(first)))["status"] is None
        for c in (chunk(2, ""), chunk(3, "")):
            assert (await stored(engine.rag, document_id(c)))["status"] == "processed"
    finally:
        held.set()
        await engine.close()


async def _pipeline_status() -> Any:
    from lightrag.kg.shared_storage import get_namespace_data

    return await get_namespace_data("pipeline_status", workspace=WS)


async def test_a_bad_delete_body_goes_to_the_dead_letter_naming_the_field(
    pg_pool: Any, redis_client: Any, redis_srv: RedisServer
) -> None:
    """Through the real producer and pool (noop engine): an entry whose body names an invalid
    doc id is malformed: dead-lettered at once (0 attempts, no engine call) with the field in
    the error, while the job's good entry is deleted; the job ends completed_with_errors."""
    from shield_orchestrator.services.job_failures import list_failures
    from shield_orchestrator.services.job_registry import JobRegistry

    registry = JobRegistry(redis_client, pg_pool, max_queue_pending=10_000,
                           idempotency_ttl_s=60)  # fmt: skip
    async with running_pool(redis_srv, db=pg_pool, workspace=WS) as pool:
        job = await _delete(registry, [["doc-good"], ["doc-ok", "not a doc id"]])
        assert await _finished(registry, job) == "completed_with_errors"
        (failure,) = await list_failures(registry.redis, registry.db, job)
        assert failure.chunk_id == "c000002"
        assert failure.error == "malformed: body.doc_ids[1] is not a document id"
        assert failure.attempts == 0
        assert dict(pool.engine.deletions) == {"doc-good": 1}
