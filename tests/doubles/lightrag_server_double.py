"""A LightRAG Server HTTP test double: a real HTTP server on a free loopback port.

Speaks the routes the ``lightrag_server`` engine uses, as lightrag-hku 1.5.7 serves them
(lightrag/api/routers/document_routes.py, lightrag/api/utils_api.py):

    POST /documents/text  X-API-Key, {"text", "file_source", "chunking"?}
        200 {"status": "success", "message": ..., "track_id": "insert_YYYYmmdd_HHMMSS_xxxxxxxx"}
        400 {"detail": "A valid file_source is required for text insertion"}
        403 {"detail": "API Key required" | "Invalid API Key"}           (combined_auth)
        409 {"detail": "Document storage already contains '<source>' (Status: <s>). ..."}
        422 {"detail": [{"type", "loc", "msg", "input"}]}                (request validation)
        429 {"detail": "Pipeline is at capacity: ..."} + Retry-After    (admission backpressure)
        500 {"detail": "Internal server error (error_id: ...)"}         (internal_server_error)
        503 {"detail": "Cannot determine how many documents are in flight, ..."}
    GET /documents/track_status/{track_id}  X-API-Key
        200 {"track_id", "documents": [DocStatusResponse], "total_count", "status_summary"}
    DELETE /documents/delete_document  X-API-Key, {"doc_ids", "delete_file"?, "delete_llm_cache"?}
        200 {"status": "deletion_started" | "busy", "message", "doc_id": "<ids joined by ', '>"}
        422 empty, blank or repeated ids (DeleteDocRequest's validator)
    GET /documents/pipeline_status  X-API-Key
        200 {"busy", "job_name", "job_start", "docs", "batchs", "cur_batch", "latest_message",
             "history_messages", "update_status", "recovery_required", ...}
    POST /query  X-API-Key, {"query", "mode"?, "only_need_context"?, "top_k"?, ...}
        200 {"response", "references", "response_time", "llm_generated"}
        422 {"detail": [...]} an empty query, a RAG query under 3 characters, a bad mode/top_k
        500 {"detail": "Internal server error (error_id: ...)"}   (fail_query_next)
        (lightrag/api/routers/query_routes.py; the context is the stored texts sharing a word
        with the query, the answer "double answer: ..." over it; ``queries`` records the bodies)

A deletion is refused with ``busy`` ("Pipeline is busy with another operation.") while a
document is enqueued or processing or another deletion runs; else it runs for ``delete_s`` as
job "Deleting N Documents" (pipeline busy; POST /documents/text answers 409 meanwhile), then
the ids are gone and the history holds the real server's lines: "Document deleted i/N:
<id>[<file>]", "Failed to delete i/N: <id>[] - Document <id> not found." for an unknown id,
"Failed to delete i/N: <id>[<file>] - <message>" for an id of ``fail_delete_when``, and
"Deletion completed: S successful, F failed".

Like the real server, the text is indexed by a background task: for ``enqueue_s`` after the
POST the track lists no document, then the document is ``processing`` for ``process_s``, then
``processed`` — or ``failed`` with ``error_msg`` when its text contains a key of
``fail_when``. Doc ids are ``doc-`` + md5(canonical file source) (a known source); identical
content under another file name becomes a failed ``dup-`` record with ``metadata.is_duplicate``
and LightRAG's own error message ("Identical content already exists under another filename.
Original doc_id: ..., Status: ..."). ``status_summary`` keys are ``str(DocStatus)``, which is
what the server computes on Python 3.11 (``"DocStatus.PROCESSED"``).

Failure injection: ``fail_next`` (statuses for the next POSTs), ``fail_track_next`` (statuses
for the next track_status GETs), ``fail_when`` (text substring -> the document's error_msg).
Records: ``api_keys_seen`` (every X-API-Key received), ``calls`` per route.

Why a double: the real ``lightrag-server`` needs the package's ``api`` extra (PyJWT, ...) and an
LLM; the in-process pipeline itself is tested through the ``lightrag`` and ``offline`` engines.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lightrag.base import DocStatus
from lightrag.parser.routing import canonicalize_parser_hinted_basename
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.doubles.ollama_double import serving
from tests.support.servers import LOOPBACK

# document_routes.py: _UNSAFE_DOCUMENT_SOURCE_CHAR_PATTERN (control characters, surrogates)
_UNSAFE = {chr(c) for c in [*range(0x20), 0x7F, 0xFFFE, 0xFFFF]}
_DETAIL = {
    429: "Pipeline is at capacity: 8 document(s) already active or reserved, 1 requested, "
    "capacity 8. Retry once documents finish processing.",
    500: "Internal server error (error_id: {})",
    503: "Cannot determine how many documents are in flight, so new work cannot be admitted. "
    "Retry once document storage is healthy.",
    401: "No credentials provided. Please login.",
    409: "Pipeline is busy with a scan or a delete; retry later.",
}


def _md5_id(text: str, prefix: str) -> str:
    return prefix + hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (LightRAG's id scheme)


def _validation_error(field_name: str, message: str, value: object) -> JSONResponse:
    """FastAPI's 422 for a request body that fails the pydantic model's validation."""
    error = {"type": "value_error", "loc": ["body", field_name], "msg": f"Value error, {message}"}
    return JSONResponse({"detail": [{**error, "input": value}]}, status_code=422)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class _Doc:
    id: str
    text: str
    file_path: str
    track_id: str
    created: float  # monotonic
    created_at: str
    error_msg: str | None = None  # set: the document ends failed
    metadata: dict[str, Any] = field(default_factory=dict)
    final_status: str = DocStatus.PROCESSED.value


@dataclass
class LightRAGServerDouble:
    api_key: str = "server-key"
    enqueue_s: float = 0.05  # the track lists nothing this long after the POST
    process_s: float = 0.1  # then the document is "processing" this long
    fail_next: list[int] = field(default_factory=list)
    fail_track_next: list[int] = field(default_factory=list)
    fail_when: dict[str, str] = field(default_factory=dict)  # text substring -> error_msg
    api_keys_seen: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    docs: dict[str, _Doc] = field(default_factory=dict)
    delete_s: float = 0.1  # a deletion job holds the pipeline this long
    fail_delete_when: dict[str, str] = field(default_factory=dict)  # doc id -> failure message
    deleting: list[str] = field(default_factory=list)  # the running deletion's ids
    deletion_ends: float = 0.0  # monotonic
    job_name: str = "Default Job"
    history: list[str] = field(default_factory=list)
    fail_query_next: list[int] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- the document lifecycle (computed from the clock: no background tasks) --------------
    def status_of(self, doc: _Doc) -> str | None:
        """None = not yet enqueued (the server's background task has not run)."""
        age = time.monotonic() - doc.created
        if doc.metadata.get("is_duplicate"):
            return DocStatus.FAILED.value if age >= self.enqueue_s else None
        if age < self.enqueue_s:
            return None
        if age < self.enqueue_s + self.process_s:
            return DocStatus.PROCESSING.value
        return doc.final_status

    def _settle(self) -> None:
        """Finish the running deletion once its time is up (call with the lock held)."""
        if not self.deleting or time.monotonic() < self.deletion_ends:
            return
        ids, self.deleting = self.deleting, []
        ok = failed = 0
        for i, doc_id in enumerate(ids, 1):
            doc = self.docs.get(doc_id)
            where = f"{i}/{len(ids)}: {doc_id}"
            if doc is None:
                failed += 1
                self.history.append(f"Failed to delete {where}[] - Document {doc_id} not found.")
            elif doc_id in self.fail_delete_when:
                failed += 1
                message = self.fail_delete_when[doc_id]
                self.history.append(f"Failed to delete {where}[{doc.file_path}] - {message}")
            else:
                ok += 1
                del self.docs[doc_id]
                self.history.append(f"Document deleted {where}[{doc.file_path}]")
        self.history.append(f"Deletion completed: {ok} successful, {failed} failed")

    def _busy(self) -> bool:
        """A deletion runs, or a document is enqueued or processing (call with the lock)."""
        self._settle()
        if self.deleting:
            return True
        return any(
            self.status_of(d) in (None, DocStatus.PROCESSING.value)
            for d in self.docs.values()
            if not d.metadata
        )

    # --- routes -------------------------------------------------------------------------------
    def _auth(self, request: Request) -> JSONResponse | None:
        key = request.headers.get("x-api-key")
        if key is not None:
            self.api_keys_seen.append(key)
        if not key:
            return JSONResponse({"detail": "API Key required"}, status_code=403)
        if key != self.api_key:
            return JSONResponse({"detail": "Invalid API Key"}, status_code=403)
        return None

    @staticmethod
    def _injected(status: int) -> JSONResponse:
        detail = _DETAIL.get(status, f"double: injected {status}").format(secrets.token_hex(6))
        headers = {"Retry-After": "30"} if status == 429 else None
        if status == 422:
            return _validation_error("chunking", "Invalid chunking configuration", None)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    async def insert_text(self, request: Request) -> JSONResponse:
        self.calls["text"] += 1
        if (refused := self._auth(request)) is not None:
            return refused
        if self.fail_next:
            return self._injected(self.fail_next.pop(0))
        body = await request.json()
        text = str(body.get("text") or "").strip()
        source = body.get("file_source")
        if not text:
            return _validation_error(
                "text", "text cannot be empty or whitespace-only", body.get("text")
            )
        if isinstance(source, str) and _UNSAFE & set(source):
            return _validation_error("file_source", "file_source has an unsafe character", source)
        canonical = canonicalize_parser_hinted_basename(str(source or "").strip())
        if not canonical:
            return JSONResponse(
                {"detail": "A valid file_source is required for text insertion"}, status_code=400
            )
        with self._lock:
            self._settle()
            if self.deleting:  # destructive_busy: the real server's 409
                return JSONResponse({"detail": _DETAIL[409]}, status_code=409)
            for doc in self.docs.values():
                if doc.file_path == canonical:
                    status = self.status_of(doc) or DocStatus.PENDING.value
                    return JSONResponse(
                        {
                            "detail": f"Document storage already contains '{canonical}' "
                            f"(Status: {status}). Delete the existing record before "
                            "re-inserting."
                        },
                        status_code=409,
                    )
            track_id = f"insert_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(4)}"
            doc = _Doc(
                id=_md5_id(canonical, "doc-"),
                text=text,
                file_path=canonical,
                track_id=track_id,
                created=time.monotonic(),
                created_at=_now_iso(),
            )
            original = next(
                (d for d in self.docs.values() if d.text == text and not d.metadata), None
            )
            if original is not None:
                status = self.status_of(original) or DocStatus.PENDING.value
                doc.id = _md5_id(f"{doc.id}-{track_id}-0-{canonical}", "dup-")
                doc.error_msg = (
                    "Identical content already exists under another filename. "
                    f"Original doc_id: {original.id}, Status: {status}"
                )
                doc.metadata = {
                    "is_duplicate": True,
                    "duplicate_kind": "content_hash",
                    "original_doc_id": original.id,
                }
            else:
                for needle, message in self.fail_when.items():
                    if needle in text:
                        doc.error_msg = message
                        doc.final_status = DocStatus.FAILED.value
            self.docs[doc.id] = doc
        return JSONResponse(
            {
                "status": "success",
                "message": "Text successfully received. Processing will continue in background.",
                "track_id": track_id,
            }
        )

    async def track_status(self, request: Request) -> JSONResponse:
        self.calls["track_status"] += 1
        if (refused := self._auth(request)) is not None:
            return refused
        if self.fail_track_next:
            return self._injected(self.fail_track_next.pop(0))
        track_id = str(request.path_params["track_id"]).strip()
        documents: list[dict[str, Any]] = []
        summary: Counter[str] = Counter()
        with self._lock:
            for doc in self.docs.values():
                status = self.status_of(doc)
                if doc.track_id != track_id or status is None:
                    continue
                failed = status == DocStatus.FAILED.value
                documents.append(
                    {
                        "id": doc.id,
                        "content_summary": doc.text[:100],
                        "content_length": len(doc.text),
                        "status": status,
                        "created_at": doc.created_at,
                        "updated_at": _now_iso(),
                        "track_id": doc.track_id,
                        "chunks_count": 0 if doc.metadata else 1,
                        "error_msg": doc.error_msg if failed else None,
                        "metadata": doc.metadata,
                        "file_path": doc.file_path,
                    }
                )
                summary[str(DocStatus(status))] += 1
        return JSONResponse(
            {
                "track_id": track_id,
                "documents": documents,
                "total_count": len(documents),
                "status_summary": dict(summary),
            }
        )

    async def delete_document(self, request: Request) -> JSONResponse:
        self.calls["delete_document"] += 1
        if (refused := self._auth(request)) is not None:
            return refused
        body = await request.json()
        ids = body.get("doc_ids")
        if not isinstance(ids, list) or not ids:
            return _validation_error("doc_ids", "Document IDs list cannot be empty", ids)
        if any(not isinstance(i, str) or not i.strip() for i in ids):
            return _validation_error("doc_ids", "Document ID cannot be empty", ids)
        ids = [i.strip() for i in ids]
        if len(set(ids)) != len(ids):
            return _validation_error("doc_ids", "Document IDs must be unique", ids)
        joined = ", ".join(ids)
        with self._lock:
            if self._busy():
                message = "Pipeline is busy with another operation."
                return JSONResponse({"status": "busy", "message": message, "doc_id": joined})
            self.deleting = ids
            self.deletion_ends = time.monotonic() + self.delete_s
            self.job_name = f"Deleting {len(ids)} Documents"
            self.history = ["Starting document deletion process"]
        return JSONResponse(
            {
                "status": "deletion_started",
                "message": f"Document deletion for {len(ids)} documents has been initiated. "
                "Processing will continue in background.",
                "doc_id": joined,
            }
        )

    async def pipeline_status(self, request: Request) -> JSONResponse:
        self.calls["pipeline_status"] += 1
        if (refused := self._auth(request)) is not None:
            return refused
        with self._lock:
            busy = self._busy()
            history = list(self.history)
            job_name = self.job_name
        return JSONResponse(
            {
                "busy": busy,
                "job_name": job_name,
                "job_start": None,
                "docs": 0,
                "batchs": 0,
                "cur_batch": 0,
                "latest_message": history[-1] if history else "",
                "history_messages": history,
                "update_status": {},
                "recovery_required": False,
                "recovery_kind": None,
                "recovery_message": None,
            }
        )

    async def query(self, request: Request) -> JSONResponse:
        self.calls["query"] += 1
        if (refused := self._auth(request)) is not None:
            return refused
        if self.fail_query_next:
            return self._injected(self.fail_query_next.pop(0))
        body = await request.json()
        self.queries.append(body)
        text = str(body.get("query") or "").strip()
        mode = body.get("mode", "mix")
        top_k = body.get("top_k")
        if not text:
            return _validation_error("query", "Query must not be empty.", body.get("query"))
        if mode not in ("local", "global", "hybrid", "naive", "mix", "bypass"):
            return _validation_error("mode", "Input should be 'local', ...", mode)
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            return _validation_error("top_k", "Input should be greater than or equal to 1", top_k)
        if mode != "bypass" and len(text) < 3:  # validate_rag_query (a CJK character counts 2)
            return _validation_error("query", "RAG query is too short. Enter at least 3 "
                                     "English characters ...", text)  # fmt: skip
        words = {w.lower() for w in text.split() if len(w) > 2}
        with self._lock:
            found = [d.text for d in self.docs.values()
                     if not d.metadata and words & {w.lower() for w in d.text.split()}]  # fmt: skip
        context = "\n".join(found[: top_k or 40])
        if body.get("only_need_context"):
            response, generated = context, False
        elif not found:
            response, generated = (
                "Sorry, I'm not able to provide an answer to that question.",
                False,
            )
        else:
            response, generated = f"double answer: {context}", True
        return JSONResponse(
            {"response": response, "references": None, "response_time": 0.001,
             "llm_generated": generated}
        )  # fmt: skip

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/documents/text", self.insert_text, methods=["POST"]),
                Route("/documents/track_status/{track_id}", self.track_status, methods=["GET"]),
                Route("/documents/delete_document", self.delete_document, methods=["DELETE"]),
                Route("/documents/pipeline_status", self.pipeline_status, methods=["GET"]),
                Route("/query", self.query, methods=["POST"]),
            ]
        )


def lightrag_server_double(**knobs: Any) -> contextlib.AbstractContextManager[LightRAGServerDouble]:
    return serving(LightRAGServerDouble(**knobs))
