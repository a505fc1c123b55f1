"""The engine interface: what the pool hands an engine and what it gets back.

The pool (workers/lightrag_processor.py) turns an ``ingest_chunk`` entry into a
:class:`ChunkInput` and calls ``engine.process``, a ``delete_document`` entry into a
:class:`DeleteInput` and calls ``engine.delete``, both under the per-task timeout, and maps the
errors the same way:

- :class:`EngineOverloaded`: back off and call again; does not spend a retry attempt.
- :class:`ChunkError`: retried with exponential backoff up to retry_attempts, then
  dead-lettered.
- :class:`PermanentChunkError`: dead-lettered at once.
- anything else: treated as a ChunkError (the pool never dies from a task's exception).

A question about the workspace's graph (services/queries.py forwards it to the process serving
the workspace) is a :class:`QueryInput`; ``engine.query`` answers a :class:`QueryResult` or
raises PermanentChunkError for a query the engine refuses (bad input), anything else for a
failure. QueryInput is a Protocol: services/queries.QueryRequest (the wire's request, which
this package may not import) is one, so the worker hands ``engine.query`` to the query server
as it is.

No engine type from a library (LightRAG) crosses this interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shield_orchestrator.errors import (
    ChunkError,
    ChunkTimeout,
    EngineError,
    EngineOverloaded,
    PermanentChunkError,
)

__all__ = [
    "ChunkError",
    "ChunkInput",
    "ChunkResult",
    "ChunkTimeout",
    "DeleteInput",
    "DeleteResult",
    "Engine",
    "EngineError",
    "EngineOverloaded",
    "PermanentChunkError",
    "QueryInput",
    "QueryResult",
]


@dataclass(frozen=True, slots=True)
class ChunkInput:
    """One chunk to process (from the stream entry's fields and JSON body)."""

    job_id: str
    chunk_id: str
    text: str
    source_uri: str
    source_type: str = "text"
    workspace: str = "default"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1  # 1 on the first try, 2 on the first retry, ...


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What an engine did with a chunk (counts for logs, metrics and events)."""

    entities: int = 0
    relations: int = 0
    document_id: str = ""  # the engine's id for the stored document, if any
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteInput:
    """Documents to take out of the workspace's graph (a ``delete_document`` entry)."""

    job_id: str
    chunk_id: str
    doc_ids: tuple[str, ...]  # the engine's document ids
    workspace: str = "default"
    source_uri: str = ""  # what the documents were (a file), for logs
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What an engine did with a deletion. Deleting an id that is already gone is success
    (counted in ``absent``): a retried or repeated deletion never fails for it."""

    deleted: int = 0  # documents this call removed
    absent: int = 0  # documents that were already gone
    detail: Mapping[str, Any] = field(default_factory=dict)


class QueryInput(Protocol):
    """A question about one workspace's graph (services/queries.QueryRequest is one)."""

    @property
    def query(self) -> str: ...

    @property
    def workspace(self) -> str: ...

    @property
    def mode(self) -> str: ...  # LightRAG's: mix, local, global, hybrid, naive

    @property
    def only_need_context(self) -> bool: ...  # the retrieved context, no generated answer

    @property
    def top_k(self) -> int | None: ...  # entities/relations to retrieve; None: LightRAG's


@dataclass(frozen=True, slots=True)
class QueryResult:
    """An engine's answer to a QueryInput."""

    text: str  # the answer, or the retrieved context when context_only
    context_only: bool
    label: str  # the engine's label: who answered and how (offline: no LLM)


@runtime_checkable
class Engine(Protocol):
    """A processing engine. One instance per worker process, shared by its slots."""

    name: str  # "noop" | "offline" | "lightrag" | "lightrag_server"
    label: str  # shown in results/logs, e.g. "offline extraction (no LLM)"
    max_concurrency: int  # chunks the engine may have in flight in this process

    async def start(self) -> None: ...

    async def process(self, chunk: ChunkInput) -> ChunkResult: ...

    async def delete(self, request: DeleteInput) -> DeleteResult: ...

    async def query(self, q: QueryInput) -> QueryResult: ...

    async def close(self) -> None: ...
