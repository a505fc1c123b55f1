"""The ``noop`` engine: does nothing (or sleeps), for tests and benchmarks. Labelled as such.

Per-chunk directives in ``metadata`` let tests script a chunk's behaviour through the real
pool (they are ignored by every other engine):

- ``noop_sleep_s``: seconds to sleep in ``process`` (overrides the engine's delay)
- ``noop_fail``: ``"permanent"`` (PermanentChunkError), ``"always"`` (ChunkError every try),
  ``"times:N"`` (ChunkError on the first N tries, then success), ``"overloaded:N"``
  (EngineOverloaded on the first N calls, then success), ``"crash"`` (a RuntimeError)

``delete`` stores nothing either: it counts each doc id it was asked to delete (``deletions``)
and reports the ids it saw before as already gone, as an idempotent engine does.

``query`` has no graph to ask: it answers that, naming itself (and counts the questions).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from shield_orchestrator.engines.base import (
    ChunkError,
    ChunkInput,
    ChunkResult,
    DeleteInput,
    DeleteResult,
    EngineOverloaded,
    PermanentChunkError,
    QueryInput,
    QueryResult,
)

NO_GRAPH = "noop engine: no graph (it stores nothing; deploy the offline or lightrag engine)"


class NoopEngine:
    name = "noop"
    label = "noop engine (does no processing; tests and benchmarks only)"

    def __init__(self, delay_s: float = 0.0, max_concurrency: int = 1024) -> None:
        self.delay_s = delay_s
        self.max_concurrency = max_concurrency
        self.calls: Counter[tuple[str, str]] = Counter()  # (job_id, chunk_id) -> process calls
        self.deletions: Counter[str] = Counter()  # doc id -> delete calls naming it
        self.queries: Counter[str] = Counter()  # workspace -> queries answered
        self.in_flight = 0
        self.max_in_flight = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def process(self, chunk: ChunkInput) -> ChunkResult:
        key = (chunk.job_id, chunk.chunk_id)
        self.calls[key] += 1
        n = self.calls[key]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            sleep_s = float(chunk.metadata.get("noop_sleep_s", self.delay_s))
            if sleep_s > 0:
                await asyncio.sleep(sleep_s)
            _fail(str(chunk.metadata.get("noop_fail", "")), n)
        finally:
            self.in_flight -= 1
        return ChunkResult(entities=0, relations=0, detail={"engine": self.name})

    async def delete(self, request: DeleteInput) -> DeleteResult:
        seen = sum(1 for doc_id in request.doc_ids if self.deletions[doc_id])
        self.deletions.update(request.doc_ids)
        return DeleteResult(len(request.doc_ids) - seen, seen, {"engine": self.name})

    async def query(self, q: QueryInput) -> QueryResult:
        self.queries[q.workspace] += 1
        return QueryResult(NO_GRAPH, q.only_need_context, self.label)


def _fail(directive: str, call: int) -> None:
    if not directive:
        return
    kind, _, count = directive.partition(":")
    limit = int(count) if count.isdigit() else 0
    if kind == "permanent":
        raise PermanentChunkError("noop: permanent failure requested")
    if kind == "always":
        raise ChunkError("noop: failure requested")
    if kind == "times" and call <= limit:
        raise ChunkError(f"noop: failure {call} of {limit} requested")
    if kind == "overloaded" and call <= limit:
        raise EngineOverloaded(f"noop: overloaded {call} of {limit}")
    if kind == "crash":
        raise RuntimeError("noop: crash requested")
