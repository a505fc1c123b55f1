"""Coalesced enqueue into LightRAG: chunks that arrive together share one enqueue call.

Why (lightrag-hku 1.5.7, lightrag/pipeline.py ``apipeline_enqueue_documents``): every call
takes the workspace's enqueue lock (callers queue behind each other), scans for duplicate
ids, paths and content, and persists ``full_docs`` and ``doc_status`` -- with the file
storages, two whole-file rewrites per call. One call per chunk therefore cost two file
rewrites per chunk and kept each chunk waiting behind the others' writes, while LightRAG's
pipeline sat idle waiting for its next document (bench/bench_flow.py, offline benchmark).

Here the first chunk starts a call at once; chunks arriving while it runs are collected and
go together into the next call (group commit: no timer, no added latency when idle). Each
chunk keeps its own document id, file path and outcome:

    admitted          -> None (the caller waits for its processing)
    identical content already stored under another id (LightRAG wrote a failed "dup" record
                      for it) -> the dup record is deleted, the original's id is returned
    refused as a duplicate of itself -> ChunkError (the caller's retry finds the document)
    the call raised   -> every chunk of that call gets the exception (as with one call each)

:class:`PipelineGate` orders these calls against document deletion. LightRAG 1.5.7's
``adelete_by_doc_id`` refuses to run (``not_allowed``) while its pipeline is busy, and when
documents were enqueued during a deletion its exit hands the pipeline to a processing run
inside the deleting call (so the deletion would not return while chunks keep arriving). So
the enqueue calls and the engine's pipeline runs hold the gate *shared*, a deletion holds it
*exclusive*: a waiting deletion stops new enqueue calls and pipeline runs, the running ones
finish (the pipeline drains the documents already enqueued), the deletion runs on an idle
pipeline, then enqueueing resumes. Deletions run one at a time (LightRAG refuses a second
single deletion while one runs). :func:`delete_documents` is that deletion::

    for each doc id, one at a time: adelete_by_doc_id(doc_id, delete_llm_cache=False)
      success   -> deleted (its chunks, vectors, graph contributions, doc status, full doc;
                   entities shared with other documents are rebuilt from the kept cache)
      not_found -> already gone: success too (a retried or repeated deletion)
      not_allowed (pipeline busy / recovery required) -> EngineOverloaded (back off)
      fail 409 (recovery anchors missing: the same call would refuse again)
                -> PermanentChunkError; any other fail -> ChunkError (retried)

The LLM cache is kept, so re-ingesting a changed file's unchanged functions costs no LLM call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from lightrag import LightRAG
from lightrag.parser.routing import resolve_chunk_options
from lightrag.utils_pipeline import normalize_document_file_path

from shield_orchestrator.engines.base import (
    ChunkError,
    EngineError,
    EngineOverloaded,
    PermanentChunkError,
)

log = logging.getLogger(__name__)


def fail_future(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail ``future`` (unless done) and mark its exception retrieved: the callers await it
    through ``asyncio.shield``, so one cancelled by the pool's timeout never reads it, and
    asyncio would log "Future exception was never retrieved" for it."""
    if not future.done():
        future.set_exception(exc)
        future.exception()


class PipelineGate:
    """Shared holders (enqueue calls, pipeline runs) or one exclusive holder (a deletion);
    a waiting exclusive holder goes first: no new shared holder enters while it waits."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive holders waiting

    @property
    def deleting(self) -> bool:
        """An exclusive holder runs or waits."""
        return self._exclusive or self._waiting > 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self.deleting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._exclusive and self._shared == 0)
            finally:
                self._waiting -= 1
                self._cond.notify_all()  # a cancelled waiter lets the shared holders in
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


async def delete_documents(
    rag: LightRAG, gate: PipelineGate, doc_ids: tuple[str, ...]
) -> tuple[int, int]:
    """Delete ``doc_ids`` one by one on the idle pipeline: (deleted, already gone)."""
    deleted = absent = 0
    async with gate.exclusive():
        for doc_id in doc_ids:
            result = await rag.adelete_by_doc_id(doc_id, delete_llm_cache=False)
            if result.status == "success":
                deleted += 1
            elif result.status == "not_found":
                absent += 1
            else:
                raise _deletion_error(doc_id, result.status, result.status_code, result.message)
    return deleted, absent


def _deletion_error(doc_id: str, status: str, code: int | None, message: str) -> EngineError:
    """The pool decision for a deletion LightRAG did not do."""
    text = f"LightRAG did not delete document {doc_id}: {status} ({code}): {message}"
    if status == "not_allowed":  # pipeline busy, or recovery required: later
        return EngineOverloaded(text)
    if code == 409:  # recovery anchors missing: the same call refuses again
        return PermanentChunkError(text)
    return ChunkError(text)


@dataclass(slots=True)
class _Doc:
    doc_id: str
    text: str
    file_path: str
    label: str  # job/chunk, for logs
    future: asyncio.Future[str | None] = field(repr=False)


class DocumentEnqueuer:
    """Group commit of ``apipeline_enqueue_documents`` calls (see the module docstring).

    :meth:`run` is the engine's supervised background task; :meth:`enqueue` is called by
    ``process`` and returns the original's document id for duplicate content, else None.
    """

    def __init__(self, rag: LightRAG, max_batch: int, gate: PipelineGate | None = None) -> None:
        self._rag = rag
        self._max_batch = max(1, max_batch)
        self._gate = gate or PipelineGate()
        self._queue: dict[str, _Doc] = {}  # doc id -> waiting for the next call
        self._current: list[_Doc] = []  # in the running call
        self._ready = asyncio.Event()
        self.calls = 0  # enqueue calls made (tests, benchmarks)

    async def enqueue(self, doc_id: str, text: str, file_path: str, label: str) -> str | None:
        doc = self._queue.get(doc_id) or next(
            (d for d in self._current if d.doc_id == doc_id), None
        )
        if doc is None:  # a redelivery of a queued chunk shares its outcome
            future = asyncio.get_running_loop().create_future()
            doc = _Doc(doc_id, text, file_path, label, future)
            self._queue[doc_id] = doc
            self._ready.set()
        # shield: a cancelled caller (pool timeout) leaves the document in the call
        return await asyncio.shield(doc.future)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every waiting chunk (the engine closes or the task died)."""
        for doc in [*self._current, *self._queue.values()]:
            fail_future(doc.future, exc)
        self._queue.clear()
        self._current = []

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                async with self._gate.shared():  # after a waiting deletion
                    ids = list(self._queue)[: self._max_batch]
                    if not ids:  # failed by fail_all while waiting
                        break
                    self._current = [self._queue.pop(i) for i in ids]
                    try:
                        outcomes = await self._call(self._current)
                    except Exception as exc:  # the call's error is each of its chunks' error
                        outcomes = dict.fromkeys(ids, exc)
                for doc in self._current:
                    outcome = outcomes.get(doc.doc_id)
                    if doc.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        fail_future(doc.future, outcome)
                    else:
                        doc.future.set_result(outcome)
                self._current = []

    async def _call(self, docs: list[_Doc]) -> dict[str, str | BaseException | None]:
        rag = self._rag
        track_id = f"shield-{uuid.uuid4().hex}"
        ids = [d.doc_id for d in docs]
        self.calls += 1
        await rag.apipeline_enqueue_documents(
            [d.text for d in docs],
            ids=ids,
            file_paths=[d.file_path for d in docs],
            track_id=track_id,
            chunk_options=resolve_chunk_options(rag.addon_params),
        )
        rows = await status_rows(rag, ids)
        if all(row is not None and row.get("track_id") == track_id for row in rows):
            return {}  # all admitted (the usual case): no scan for dup records
        records = await rag.aget_docs_by_track_id(track_id)
        dups = {k: v for k, v in records.items() if (v.metadata or {}).get("is_duplicate")}
        if not dups:
            return {}
        await rag.doc_status.delete(list(dups))  # the "dup" records: not documents of ours
        by_path: dict[str, list[Any]] = {}
        for record in dups.values():
            by_path.setdefault(str(record.file_path), []).append(record)
        outcomes: dict[str, str | BaseException | None] = {}
        for doc in docs:
            found = by_path.get(normalize_document_file_path(doc.file_path))
            if not found:
                continue  # admitted
            original = str(found[0].metadata.get("original_doc_id") or "")
            log.info(
                "chunk %s: content already stored as %s",
                doc.label,
                original,
                extra={"action": "engine.duplicate_content"},
            )
            if not original or original == doc.doc_id:
                outcomes[doc.doc_id] = ChunkError(
                    f"LightRAG refused document {doc.doc_id} as a duplicate: "
                    f"{[str(r.error_msg) for r in found]}"
                )
            else:
                outcomes[doc.doc_id] = original
        return outcomes


async def status_rows(rag: Any, ids: list[str]) -> list[dict[str, Any] | None]:
    """The doc status row (or None) of each id, in order.

    JsonDocStatusStorage answers one entry per id; PGDocStatusStorage (1.5.7) answers [] when
    none of the ids has a row (all of them duplicates of stored content, for example), which
    would read as "every document admitted".
    """
    rows = list(await rag.doc_status.get_by_ids(ids))
    return rows if rows else [None] * len(ids)
