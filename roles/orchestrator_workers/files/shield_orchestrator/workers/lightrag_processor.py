"""The processing step: an entry's body -> the engine's input -> the engine -> its result.

    ingest_chunk     chunk_input  -> ChunkInput  -> engine.process -> ChunkResult
    delete_document  delete_input -> DeleteInput -> engine.delete  -> DeleteResult

The pool's handlers (workers/handlers.py) call :class:`ChunkProcessor` for each entry; this
module turns the entry's body (read by services/messages.py, the message contract) into the
engine's input and applies the per-task timeout; it knows nothing about retries or Redis.
Engine specifics (LightRAG, LightRAG Server, offline) live behind engines/base.Engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from shield_orchestrator.engines.base import (
    ChunkInput,
    ChunkResult,
    ChunkTimeout,
    DeleteInput,
    DeleteResult,
    Engine,
)
from shield_orchestrator.services.messages import parse_chunk_body, parse_delete_body

T = TypeVar("T")


def chunk_input(job_id: str, chunk_id: str, body: str, attempt: int = 1) -> ChunkInput:
    """The engine's input from an ``ingest_chunk`` body; MalformedMessage names the problem."""
    fields = parse_chunk_body(body, job_id, chunk_id)._asdict()  # text ... metadata, by name
    return ChunkInput(job_id=job_id, chunk_id=chunk_id, attempt=attempt, **fields)


def delete_input(job_id: str, chunk_id: str, body: str, attempt: int = 1) -> DeleteInput:
    """The engine's input from a ``delete_document`` body; MalformedMessage names the field."""
    parsed = parse_delete_body(body)
    return DeleteInput(job_id, chunk_id, parsed.doc_ids, parsed.workspace, parsed.source_uri,
                       attempt)  # fmt: skip


class ChunkProcessor:
    """Runs one entry through the engine under the per-task timeout."""

    def __init__(self, engine: Engine, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s

    async def process(self, chunk: ChunkInput) -> ChunkResult:
        """The engine's result; ChunkTimeout when it takes longer than the timeout."""
        return await self._timed(self.engine.process(chunk))

    async def delete(self, request: DeleteInput) -> DeleteResult:
        """The engine's deletion; ChunkTimeout when it takes longer than the timeout."""
        return await self._timed(self.engine.delete(request))

    async def _timed(self, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await work
        except TimeoutError:
            raise ChunkTimeout(f"no result after {self.timeout_s:g}s") from None
