"""The real worker entry with an engine that ignores cancellation:
``python -m tests.support.stubborn_worker N`` (tests of saq's second shutdown deadline).

It runs ``shield_orchestrator.workers.__main__.main`` unchanged, except that the engine the
factory builds is a :class:`StubbornEngine`, which swallows every cancellation until its
``release`` event is set (never, in this process). It logs ``action=stubborn_started`` when a
chunk begins, so a test knows the chunk is in flight, not only fetched.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

log = logging.getLogger("tests.stubborn_worker")


class StubbornEngine:
    """Swallows every cancellation until ``release`` is set; ``hang_in_close``: close() too."""

    name = "stubborn"
    label = "test double: ignores cancellation"
    max_concurrency = 1024

    def __init__(self, hang_in_close: bool = False) -> None:
        self.release = asyncio.Event()
        self.hang_in_close = hang_in_close
        self.in_flight = 0
        self.cancels_ignored = 0

    async def start(self) -> None:
        return None

    async def process(self, chunk: Any) -> Any:
        from shield_orchestrator.engines.base import ChunkResult

        self.in_flight += 1
        log.info("chunk %s started", chunk.chunk_id, extra={"action": "stubborn_started"})
        await self._ignore_cancellation()
        return ChunkResult(entities=0, relations=0, detail={"engine": self.name})

    async def delete(self, request: Any) -> Any:
        raise NotImplementedError("the stubborn engine only processes chunks")

    async def query(self, q: Any) -> Any:
        from shield_orchestrator.engines.base import QueryResult

        return QueryResult("stubborn engine: no graph", q.only_need_context, self.label)

    async def close(self) -> None:
        if self.hang_in_close:
            await self._ignore_cancellation()

    async def _ignore_cancellation(self) -> None:
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancels_ignored += 1
                continue


def main() -> int:
    from shield_orchestrator.workers import __main__ as entry

    def stubborn_factory(settings: Any, *args: Any, **kwargs: Any) -> Any:
        return StubbornEngine(hang_in_close=True)

    entry.create_engine = stubborn_factory  # type: ignore[assignment]
    return int(entry.main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
