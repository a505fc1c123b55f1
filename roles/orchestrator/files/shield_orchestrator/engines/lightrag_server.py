"""The ``lightrag_server`` engine: a remote LightRAG Server over HTTP (many hosts, one graph).

Routes used (lightrag/api/routers/document_routes.py in lightrag-hku 1.5.7), with ``X-API-Key``:

    POST /documents/text {"text", "file_source"} -> 200 {"status", "message", "track_id"}
         400 invalid file_source, 409 same file name or a scan/delete in flight, 422 bad chunking
    GET  /documents/track_status/{track_id}      -> {"documents": [{id, status, error_msg,
         metadata, chunks_count, ...}], "total_count", "status_summary"}
    DELETE /documents/delete_document {"doc_ids", "delete_file": false, "delete_llm_cache":
         false} -> 200 {"status": "deletion_started" | "busy" | "not_allowed", "message",
         "doc_id"}; 422 empty or repeated ids
    GET  /documents/pipeline_status              -> {"busy", "job_name", "latest_message",
         "history_messages", ...}
    POST /query {"query", "mode", "only_need_context", "top_k"?, "include_references": false}
         -> 200 {"response", "references", "response_time", "llm_generated"}; 422 an empty or
         too short query (query_routes.QueryRequest), 500 the query failed
         (lightrag/api/routers/query_routes.py)

A query (``query``) asks the server's one graph: a 422 is the query's fault (QueryRejected at
the API), anything else a failure. The server has no per-request workspace: it answers from
the graph it serves.

The text is indexed by a background task on the server, so the track may list no document for
a moment; we poll until every listed document is ``processed`` or ``failed``.

``file_source`` is unique per chunk *and attempt* ({source}#{job}.{chunk}.a{attempt}): the
server refuses a second document with a known file name (409), so a retry gets a new name.
A 409 saying our own file name is already ``processed`` means an earlier identical call
succeeded (its answer was lost): the chunk counts as done (``detail.already_stored``).
Identical content already stored shows up as a failed record with ``metadata.is_duplicate``:
when the original is processed the chunk counts as done (``detail.duplicate_of``); otherwise
it is a ChunkError. The server does not report per-document entity/relation counts (0 here,
``detail.counts`` = "not reported by LightRAG Server").

HTTP answers to the insert map to the pool's decisions: 429/503 -> EngineOverloaded (back off,
no attempt spent); other 409s and 5xx, timeouts, connection errors -> ChunkError (retry); other
4xx (400, 401/403 bad API key, 422) -> PermanentChunkError (dead letter at once). While
polling, a transient failure (429, 5xx, timeout) is retried until the track deadline: the
document is already in the server's pipeline, and giving up would only re-send it.

A deletion (``delete``) asks the server to delete the doc ids, which it does in a background
task holding its pipeline as job "Deleting N Documents" (refused with ``busy`` while any
document is processed or enqueued: EngineOverloaded, the pool backs off; inserts meanwhile get
409, a ChunkError retried later). We poll ``pipeline_status`` until that job has released the
pipeline; its history then says what each id came to ("Document deleted i/N: <id>[...]",
"Failed to delete i/N: <id>[...] - <message>", "Error deleting document i/N: ..."):

    deleted                        -> counted in ``deleted``
    failed, "Document <id> not found." -> already gone: counted in ``absent`` (a retried
                                      deletion succeeds)
    failed otherwise               -> ChunkError naming the ids (the retry finds the deleted
                                      ones gone)
    history no longer ours (another job started since) -> counted in ``deleted``,
                                      ``detail.unverified`` names them

The API key travels in the ``X-API-Key`` header only; it is never logged or put in a message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import httpx

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

log = logging.getLogger(__name__)
OVERLOAD_STATUS = frozenset({429, 503})
TERMINAL = frozenset({"processed", "failed"})
# "... (Status: processed)" / "Status: DocStatus.PROCESSED" in LightRAG's 409 and dup messages
_SAYS_PROCESSED = re.compile(r"Status: (?:DocStatus\.)?processed\b", re.IGNORECASE)


def file_source(chunk: ChunkInput) -> str:
    source = chunk.source_uri.rstrip("/").rsplit("/", 1)[-1] or "chunk"
    return f"{source}#{chunk.job_id}.{chunk.chunk_id}.a{chunk.attempt}"


def _is_deletion(status: dict[str, Any]) -> bool:
    return str(status.get("job_name") or "").lower().startswith("deleting")


def deletion_result(
    doc_ids: tuple[str, ...], status: dict[str, Any], detail: dict[str, Any]
) -> DeleteResult:
    """What the deletion job's history says of each id (see the module docstring)."""
    history = [str(m) for m in status.get("history_messages") or []] if _is_deletion(status) else []
    deleted, absent, failed, unverified = 0, 0, [], []
    for doc_id in doc_ids:
        said = [m for m in history if f": {doc_id}[" in m]
        if any(m.startswith("Document deleted") for m in said):
            deleted += 1
        elif any(m.startswith("Failed to delete") and "not found" in m for m in said):
            absent += 1
        elif said:
            failed.append(said[-1][:300])
        else:
            deleted += 1
            unverified.append(doc_id)
    if failed:
        raise ChunkError(f"LightRAG Server did not delete {len(failed)} document(s): {failed}")
    if unverified:
        detail = {**detail, "unverified": unverified}
    return DeleteResult(deleted, absent, detail)


def error_for_status(response: httpx.Response, what: str) -> EngineError:
    """The pool decision for a non-2xx answer of the server."""
    detail = response.text[:300]
    message = f"LightRAG Server {what}: HTTP {response.status_code}: {detail}"
    if response.status_code in OVERLOAD_STATUS:
        return EngineOverloaded(message)
    if response.status_code == 409 or response.status_code >= 500:
        return ChunkError(message)
    return PermanentChunkError(message)


class LightRAGServerEngine:
    name = "lightrag_server"
    label = "LightRAG Server over HTTP"

    def __init__(self, config: EngineConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self.max_concurrency = config.lightrag_max_in_flight
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        headers = (
            {"X-API-Key": self.config.lightrag_api_key} if self.config.lightrag_api_key else {}
        )
        self._client = httpx.AsyncClient(
            base_url=self.config.lightrag_server_url.rstrip("/"),
            headers=headers,
            timeout=self.config.lightrag_request_timeout_s,
            transport=self._transport,
        )
        log.info(
            "engine %s started: %s",
            self.name,
            self.config.lightrag_server_url,
            extra={"action": "engine.started", "engine": self.name},
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            raise EngineError(f"engine {self.name} is not started")
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ChunkError(f"LightRAG Server {what}: timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ChunkError(f"LightRAG Server {what}: {exc!r}") from exc

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise error_for_status(response, what)
        try:
            body = response.json()
        except ValueError as exc:
            raise ChunkError(f"LightRAG Server {what}: not JSON: {response.text[:200]}") from exc
        if not isinstance(body, dict):
            raise ChunkError(f"LightRAG Server {what}: unexpected answer: {response.text[:200]}")
        return body

    async def process(self, chunk: ChunkInput) -> ChunkResult:
        body = {"text": chunk.text, "file_source": file_source(chunk)}
        response = await self._send("POST", "/documents/text", "insert", json=body)
        if response.status_code == 409 and _SAYS_PROCESSED.search(response.text):
            return ChunkResult(detail={**self._detail(), "already_stored": body["file_source"]})
        inserted = self._json(response, "insert")
        track_id = str(inserted.get("track_id") or "")
        if not track_id:
            raise ChunkError(f"LightRAG Server insert answered without track_id: {inserted}")
        docs = await self._wait(track_id)
        return self._result(track_id, docs)

    async def delete(self, request: DeleteInput) -> DeleteResult:
        body = {"doc_ids": list(request.doc_ids), "delete_file": False, "delete_llm_cache": False}
        response = await self._send("DELETE", "/documents/delete_document", "delete", json=body)
        answer = self._json(response, "delete")
        status = str(answer.get("status"))
        if status in ("busy", "not_allowed"):  # the pipeline runs another job: later
            raise EngineOverloaded(f"LightRAG Server delete: {status}: {answer.get('message')}")
        if status != "deletion_started":
            raise ChunkError(f"LightRAG Server delete: unexpected answer: {answer}")
        final = await self._wait_deleted()
        return deletion_result(request.doc_ids, final, self._detail())

    async def query(self, q: QueryInput) -> QueryResult:
        body: dict[str, Any] = {"query": q.query, "mode": q.mode, "include_references": False,
                                "only_need_context": q.only_need_context}  # fmt: skip
        if q.top_k is not None:
            body["top_k"] = q.top_k
        response = await self._send("POST", "/query", "query", json=body)
        if response.status_code in (400, 422):
            raise PermanentChunkError(f"LightRAG Server refuses the query: {response.text[:300]}")
        if response.status_code >= 400:
            raise ChunkError(f"LightRAG Server query: HTTP {response.status_code}: "
                             f"{response.text[:300]}")  # fmt: skip
        answer = self._json(response, "query")
        return QueryResult(str(answer.get("response") or ""), q.only_need_context, self.label)

    async def _wait_deleted(self) -> dict[str, Any]:
        """Poll pipeline_status until the deletion job has released the pipeline; its status."""
        deadline = time.monotonic() + self.config.lightrag_track_timeout_s
        while True:
            try:
                response = await self._send("GET", "/documents/pipeline_status", "pipeline_status")
                status = self._json(response, "pipeline_status")
                if not (status.get("busy") and _is_deletion(status)):
                    return status
                summary = str(status.get("latest_message") or status.get("job_name"))
            except (EngineOverloaded, ChunkError) as exc:  # 429, 5xx, timeout: ask again
                summary = str(exc)
            if time.monotonic() >= deadline:
                raise ChunkError(
                    f"LightRAG Server: deletion not finished after "
                    f"{self.config.lightrag_track_timeout_s:.0f}s ({summary})"
                )
            await asyncio.sleep(self.config.lightrag_poll_s)

    async def _wait(self, track_id: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.config.lightrag_track_timeout_s
        summary: object = "no answer yet"
        while True:
            try:
                response = await self._send(
                    "GET", f"/documents/track_status/{track_id}", "track_status"
                )
                status = self._json(response, "track_status")
            except (EngineOverloaded, ChunkError) as exc:  # 429, 5xx, timeout: still queued there
                log.warning(
                    "track %s: poll failed, retrying: %s",
                    track_id,
                    exc,
                    extra={"action": "engine.track_poll_failed", "engine": self.name},
                )
                summary = str(exc)
            else:
                docs = list(status.get("documents") or [])
                if docs and all(str(d.get("status")) in TERMINAL for d in docs):
                    return docs
                summary = status.get("status_summary")
            if time.monotonic() >= deadline:
                raise ChunkError(
                    f"LightRAG Server: track {track_id} not processed after "
                    f"{self.config.lightrag_track_timeout_s:.0f}s ({summary})"
                )
            await asyncio.sleep(self.config.lightrag_poll_s)

    def _detail(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "label": self.label,
            "counts": "not reported by LightRAG Server",
        }

    def _result(self, track_id: str, docs: list[dict[str, Any]]) -> ChunkResult:
        detail = {**self._detail(), "track_id": track_id}
        for doc in docs:
            metadata = doc.get("metadata") or {}
            if str(doc.get("status")) == "processed":
                return ChunkResult(document_id=str(doc.get("id")), detail=detail)
            if metadata.get("is_duplicate"):
                original = str(metadata.get("original_doc_id") or "")
                error = str(doc.get("error_msg") or "")
                if _SAYS_PROCESSED.search(error):
                    detail["duplicate_of"] = original
                    return ChunkResult(document_id=original, detail=detail)
                raise ChunkError(
                    f"LightRAG Server: content duplicates document {original}: {error}"
                )
        errors = "; ".join(str(d.get("error_msg") or "no error message") for d in docs)
        raise ChunkError(f"LightRAG Server failed track {track_id}: {errors}")
