"""The ``lightrag`` engine: lightrag-hku in this process (LLM and embeddings over Ollama).

One LightRAG instance per worker process, one process per workspace storage (a Redis lease,
engines/workspace_lock.py: per host for file storages, fleet-wide for PostgreSQL ones). The
pool calls ``process`` concurrently, up to ``max_concurrency`` (= max_parallel_insert) chunks
at once; LightRAG bounds LLM calls to llm_model_max_async.

How a chunk goes through LightRAG (1.5.7 semantics):

    process(chunk)
      doc id = shield-{job_id}-{chunk_id}; file path = {source name}#{job_id}.{chunk_id} (unique)
      doc status of that id:
        processed             -> a redelivery: report the stored result, do nothing
        pending / processing  -> still in the pipeline (ours, or resumed from a dead owner): wait
        failed                -> a retry: reset it to pending with LightRAG's own reset update
                                 (no second record; adelete_by_doc_id is refused while the
                                 pipeline is busy, so it cannot serve a running pool)
        absent                -> apipeline_enqueue_documents (never ainsert: the caller that
                                 happens to own LightRAG's processing loop would not return
                                 while work keeps arriving), coalesced with the chunks that
                                 arrive meanwhile into one call (engines/lightrag_enqueue.py)
      identical content already stored under another id -> LightRAG writes a failed "dup"
        record; we drop that record and report the original document's result
      wake the driver; wait for the poller to see processed | failed
        processed -> ChunkResult(entities, relations) from full_entities / full_relations
        failed    -> EngineOverloaded if the LLM said 429/503/timeout, else ChunkError with
                     LightRAG's error message

Three supervised background tasks: the *enqueuer* makes the coalesced enqueue calls, the
*driver* runs ``apipeline_process_enqueue_documents`` whenever woken (LightRAG's mailbox feeds
documents enqueued meanwhile into the running loop), the *poller* reads the doc status of
awaited documents. LightRAG has no completion callback, so the engine wraps its own
``doc_status.upsert`` (in 1.5.7 every status transition of the pipeline goes through it:
``_upsert_doc_status_transition``): a write of processed/failed for an awaited document wakes
the poller at once, which then reads just those documents (the status it reports is always
the one read back from the storage). As a safety net for a write through any other path,
the poller also reads every awaited document: each status_poll_ms while LightRAG's pipeline is
idle, every BUSY_FULL_POLL_PERIODS periods while it runs (its writes come through the hook).
Reading every awaited document every 10 ms instead cost more CPU than the rest of the engine
(~1,000 doc-status rows read and decoded per chunk with 48 chunks in flight on PostgreSQL).

How a deletion goes through LightRAG (a ``delete_document`` entry; the repository indexer
sends them for removed and changed files):

    delete(request) -> lightrag_enqueue.delete_documents: under the pipeline gate, held
      exclusively (new enqueue calls and pipeline runs wait, the running ones finish),
      adelete_by_doc_id(id, delete_llm_cache=False) for each id on the idle pipeline;
      not_found is success (a retried deletion), not_allowed EngineOverloaded

A query (``query``, forwarded by services/queries.py to the workspace's owner) is answered by
this same instance, concurrently with the pipeline, as LightRAG Server does
(engines/lightrag_query.py).

``max_concurrency`` (the chunks the pool keeps in flight) is max_parallel_insert plus a
backlog of as many again: LightRAG processes at most max_parallel_insert documents at once,
and a document that finishes is replaced at once from its own queue instead of after the
poller has seen it, the pool has acknowledged it and the next chunk has been enqueued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import redis.asyncio as aioredis
from lightrag import LightRAG
from lightrag.base import DocStatus

from shield_orchestrator.engines import lightrag_query, lightrag_setup
from shield_orchestrator.engines.base import (
    ChunkError,
    ChunkInput,
    ChunkResult,
    DeleteInput,
    DeleteResult,
    EngineError,
    EngineOverloaded,
    PermanentChunkError,
    QueryInput,
    QueryResult,
)
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.lightrag_enqueue import (
    DocumentEnqueuer,
    PipelineGate,
    delete_documents,
    fail_future,
    status_rows,
)
from shield_orchestrator.engines.ollama_binding import OVERLOAD_MARKER, OllamaBinding
from shield_orchestrator.engines.workspace_lock import WorkspaceLock, lease_host

log = logging.getLogger(__name__)
TERMINAL = frozenset({DocStatus.PROCESSED.value, DocStatus.FAILED.value})
BUSY_FULL_POLL_PERIODS = 20  # while LightRAG's pipeline runs, read every awaited doc this seldom


def document_id(chunk: ChunkInput) -> str:
    return f"shield-{chunk.job_id}-{chunk.chunk_id}"


def document_path(chunk: ChunkInput) -> str:
    """Unique per chunk. LightRAG keeps only the basename and dedupes by it: no '/' after it."""
    source = chunk.source_uri.rstrip("/").rsplit("/", 1)[-1] or "chunk"
    return f"{source}#{chunk.job_id}.{chunk.chunk_id}"


class LightRAGEngine:
    """lightrag-hku in-process behind the Engine protocol (see the module docstring)."""

    name = "lightrag"
    label = "LightRAG in-process (LLM over Ollama)"
    has_llm = True  # writes query answers (the offline engine returns the context instead)

    def __init__(self, config: EngineConfig, *, rag: LightRAG | None = None) -> None:
        self.config = config
        self.max_concurrency = 2 * config.max_parallel_insert  # see the module docstring
        self._rag = rag
        self._lock: WorkspaceLock | None = None
        self._redis: aioredis.Redis | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._wake = asyncio.Event()
        self._written: set[str] = set()  # awaited documents whose terminal status was written
        self._status_written = asyncio.Event()
        self._last_full_poll = 0.0  # event loop time of the last read of every awaited doc
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._started = False
        self._ollama: OllamaBinding | None = None  # engine lightrag: the one Ollama client
        self._enqueuer: DocumentEnqueuer | None = None
        self._gate = PipelineGate()  # enqueue calls and pipeline runs vs deletions

    # --- construction (overridden by the offline engine) ---------------------------------------
    def build_rag(self) -> LightRAG:
        c = self.config
        self._ollama = OllamaBinding(c)
        complete, embed = self._ollama.functions()
        return lightrag_setup.build_rag(
            c,
            llm_func=complete,
            llm_kwargs={},
            embedding=lightrag_setup.ollama_embedding(c, embed),
            llm_model_name=c.ollama_llm_model,
        )

    @property
    def rag(self) -> LightRAG:
        """The LightRAG instance (tests and tools query the graph through it)."""
        if self._rag is None:
            raise EngineError(f"engine {self.name} is not started")
        return self._rag

    @property
    def lease_lost(self) -> bool:
        """True once another process took this workspace's lease (the pool must stop)."""
        return self._lock is not None and self._lock.lost.is_set()

    @property
    def enqueue_calls(self) -> int:
        """LightRAG enqueue calls made so far (chunks arriving together share one)."""
        return self._enqueuer.calls if self._enqueuer is not None else 0

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self.config.redis_url:
            self._redis = aioredis.Redis.from_url(self.config.redis_url)
            self._lock = WorkspaceLock(
                self._redis,
                self.config.workspace,
                self.config.workspace_lock_ttl_s,
                host=lease_host(lightrag_setup.uses_postgres(self.config), self.config.host),
                owner=f"{self.config.host or socket.gethostname()}:{self.config.lock_owner}",
            )
        try:
            if self._lock is not None:
                await self._lock.acquire(self.config.lock_wait_s())
            if self._rag is None:
                self._rag = self.build_rag()
            await self._rag.initialize_storages()
            self._hook_status_writes(self._rag)
        except BaseException:
            await self._release_lock()
            raise
        self._enqueuer = DocumentEnqueuer(self._rag, self.max_concurrency, self._gate)
        self._tasks = [
            asyncio.create_task(
                self._supervise(self._enqueuer.run, "enqueuer"), name="lightrag-enqueuer"
            ),
            asyncio.create_task(self._supervise(self._drive, "driver"), name="lightrag-driver"),
            asyncio.create_task(self._supervise(self._poll, "poller"), name="lightrag-poller"),
        ]
        self._started = True
        self._wake.set()  # resume documents a previous owner left pending
        log.info(
            "engine %s started: workspace %r, %d chunks in flight",
            self.name,
            self.config.workspace,
            self.max_concurrency,
            extra={"action": "engine.started", "engine": self.name, "label": self.label},
        )

    async def close(self) -> None:
        """Stop the background tasks, finalise the storages, release the lease (idempotent)."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        closed = ChunkError(f"engine {self.name} closed")
        if self._enqueuer is not None:
            self._enqueuer.fail_all(closed)
        for future in self._waiters.values():
            fail_future(future, closed)
        self._waiters.clear()
        if self._rag is not None:
            await self._rag.finalize_storages()
        if self._ollama is not None:
            await self._ollama.aclose()
        await self._release_lock()
        log.info("engine %s closed", self.name, extra={"action": "engine.closed"})

    async def _release_lock(self) -> None:
        if self._lock is not None:
            await self._lock.release()
            self._lock = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- the Engine protocol ------------------------------------------------------------------
    async def process(self, chunk: ChunkInput) -> ChunkResult:
        self._check_usable(chunk.workspace, "chunk")
        rag = self.rag
        doc_id = document_id(chunk)
        existing = await rag.doc_status.get_by_id(doc_id)
        duplicate_of = ""
        if existing is None:
            original = await self._enqueue(chunk, doc_id)
            if original is not None:  # identical content is stored under another id
                duplicate_of, doc_id = original, original
                existing = await rag.doc_status.get_by_id(doc_id)
        if existing is not None and _status(existing) == DocStatus.FAILED.value:
            await self._reset_failed(doc_id, existing)
        doc = await self._wait(doc_id)
        if _status(doc) == DocStatus.FAILED.value:
            raise self._failure_error(doc_id, str(doc.get("error_msg") or "no error message"))
        return await self._result(doc_id, duplicate_of)

    # --- steps ------------------------------------------------------------------------------
    async def delete(self, request: DeleteInput) -> DeleteResult:
        """Delete the documents on an idle pipeline (see the module docstring)."""
        self._check_usable(request.workspace, "deletion")
        deleted, absent = await delete_documents(self.rag, self._gate, request.doc_ids)
        log.info(
            "deletion %s/%s (%s): %d document(s) deleted, %d already gone",
            request.job_id, request.chunk_id, request.source_uri, deleted, absent,
            extra={"action": "engine.deleted", "engine": self.name},
        )  # fmt: skip
        return DeleteResult(deleted, absent, {"engine": self.name, "label": self.label})

    async def query(self, q: QueryInput) -> QueryResult:
        """Answer from this engine's LightRAG instance (engines/lightrag_query.py)."""
        self._check_usable(q.workspace, "query")
        return await lightrag_query.ask(self.rag, q, self.label, offline=not self.has_llm)

    def _check_usable(self, workspace: str, what: str) -> None:
        if self._failure is not None:
            raise ChunkError(f"engine {self.name} is broken: {self._failure!r}")
        if self._lock is not None and self._lock.lost.is_set():
            raise EngineOverloaded(
                f"workspace {self.config.workspace!r} lease lost; not processing"
            )
        if workspace != self.config.workspace:
            raise PermanentChunkError(
                f"{what} is for workspace {workspace!r}; this worker's {self.name} engine "
                f"serves workspace {self.config.workspace!r} only"
            )

    async def _enqueue(self, chunk: ChunkInput, doc_id: str) -> str | None:
        """Enqueue; return the original doc id when LightRAG found the content already stored."""
        if self._enqueuer is None:
            raise EngineError(f"engine {self.name} is not started")
        label = f"{chunk.job_id}/{chunk.chunk_id}"
        return await self._enqueuer.enqueue(doc_id, chunk.text, document_path(chunk), label)

    async def _reset_failed(self, doc_id: str, record: dict[str, Any]) -> None:
        """FAILED -> PENDING with LightRAG's own reset update (keeps one record per chunk)."""
        from lightrag.base import DocProcessingStatus

        rag = self.rag
        content = await rag.full_docs.get_by_id(doc_id)
        if not content:
            raise ChunkError(f"document {doc_id} failed and its content is gone; cannot retry")
        status_doc = DocProcessingStatus.from_stored(record)
        update, _, _ = rag._build_pending_reset_update(status_doc, content)
        await rag.doc_status.upsert({doc_id: update})
        log.info(
            "document %s: failed before, reset to pending for a retry",
            doc_id,
            extra={"action": "engine.retry_reset"},
        )

    async def _wait(self, doc_id: str) -> dict[str, Any]:
        future = self._waiters.get(doc_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[doc_id] = future
        self._wake.set()
        # shield: a cancelled process() (pool timeout) leaves the poller watching the document
        return await asyncio.shield(future)

    def _failure_error(self, doc_id: str, message: str) -> EngineError:
        if OVERLOAD_MARKER in message:
            return EngineOverloaded(f"LightRAG document {doc_id}: {message}")
        return ChunkError(f"LightRAG failed document {doc_id}: {message}")

    async def _result(self, doc_id: str, duplicate_of: str) -> ChunkResult:
        rag = self.rag
        entities = await rag.full_entities.get_by_id(doc_id) or {}
        relations = await rag.full_relations.get_by_id(doc_id) or {}
        detail: dict[str, Any] = {"engine": self.name, "label": self.label}
        if duplicate_of:
            detail["duplicate_of"] = duplicate_of
        return ChunkResult(
            entities=len(entities.get("entity_names") or []),
            relations=len(relations.get("relation_pairs") or []),
            document_id=doc_id,
            detail=detail,
        )

    # --- background tasks ------------------------------------------------------------------
    async def _supervise(self, body: Any, what: str) -> None:
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            log.exception(
                "engine %s: %s died",
                self.name,
                what,
                extra={"action": "engine.task_died", "task": what},
            )
            died = ChunkError(f"engine {what} died: {exc!r}")
            if self._enqueuer is not None:
                self._enqueuer.fail_all(died)
            for future in self._waiters.values():
                fail_future(future, died)

    async def _drive(self) -> None:
        rag = self.rag
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                async with self._gate.shared():  # not while a deletion runs or waits
                    await rag.apipeline_process_enqueue_documents()
            except Exception:  # a storage hiccup: the poller wakes us again for pending docs
                log.exception(
                    "engine %s: pipeline run failed",
                    self.name,
                    extra={"action": "engine.pipeline_failed"},
                )
                await asyncio.sleep(self.config.status_poll_s * 10)

    def _hook_status_writes(self, rag: LightRAG) -> None:
        """Wake the poller when LightRAG writes a terminal status of an awaited document."""
        storage = rag.doc_status
        upsert = storage.upsert
        if getattr(upsert, "_shield_hook", False):
            return

        async def upsert_and_signal(data: dict[str, dict[str, Any]]) -> None:
            await upsert(data)
            done = {
                k
                for k, v in data.items()
                if k in self._waiters and isinstance(v, dict) and _status(v) in TERMINAL
            }
            if done:
                self._written |= done
                self._status_written.set()

        upsert_and_signal._shield_hook = True  # type: ignore[attr-defined]
        setattr(storage, "upsert", upsert_and_signal)  # noqa: B010  # an instance attribute

    async def _next_poll(self, pipeline: Any) -> list[str]:
        """The awaited documents to read: those just written, or all of them (safety net)."""
        period = self.config.status_poll_s
        try:
            await asyncio.wait_for(self._status_written.wait(), period)
            signalled = True
        except TimeoutError:
            signalled = False
        self._status_written.clear()
        written, self._written = self._written, set()
        now = asyncio.get_running_loop().time()
        if (not signalled and not pipeline.get("busy")) or (
            now - self._last_full_poll >= BUSY_FULL_POLL_PERIODS * period
        ):
            self._last_full_poll = now
            return list(self._waiters)
        return [doc_id for doc_id in written if doc_id in self._waiters]

    async def _poll(self) -> None:
        from lightrag.kg.shared_storage import get_namespace_data

        rag = self.rag
        pipeline = await get_namespace_data("pipeline_status", workspace=rag.workspace)
        while True:
            ids = await self._next_poll(pipeline)
            if not ids:
                continue
            rows = await status_rows(rag, ids)
            still_waiting = False
            for doc_id, row in zip(ids, rows, strict=True):
                if row is not None and _status(row) in TERMINAL:
                    future = self._waiters.pop(doc_id)
                    if not future.done():
                        future.set_result(dict(row))
                else:
                    still_waiting = True
            if still_waiting and not pipeline.get("busy"):
                self._wake.set()


def _status(row: dict[str, Any]) -> str:
    status = row.get("status")
    return str(status.value if isinstance(status, DocStatus) else status)
