"""The real worker entry with a recording engine: ``python -m tests.faults.recording_worker N``.

It runs ``shield_orchestrator.workers.__main__.main`` unchanged, except that the engine the
factory builds (noop, from the settings) is wrapped so that every ``process()`` call is
counted in a *recorder* Redis (FAULTS_RECORDER_URL; a different server from the one under
test, so restarting that one never loses a record). Keys (test-only, not product keys):

    faults:started   hash "<job_id>:<chunk_id>" -> process() calls begun
    faults:finished  hash "<job_id>:<chunk_id>" -> process() calls that returned

This is the observable behind "processed exactly once" across processes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

STARTED = "faults:started"
FINISHED = "faults:finished"


class RecordingEngine:
    """Delegates to the configured engine; counts calls in the recorder Redis."""

    def __init__(self, inner: Any, recorder_url: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.label = f"{inner.label} [recording, tests only]"
        self.max_concurrency = inner.max_concurrency
        self.recorder_url = recorder_url
        self.redis: Any = None

    @property
    def lease_lost(self) -> bool:
        return bool(getattr(self.inner, "lease_lost", False))

    async def start(self) -> None:
        from redis.asyncio import Redis

        await self.inner.start()  # a busy workspace refuses here, before anything is opened
        self.redis = Redis.from_url(self.recorder_url, decode_responses=True)

    async def process(self, chunk: Any) -> Any:
        field = f"{chunk.job_id}:{chunk.chunk_id}"
        await self.redis.hincrby(STARTED, field, 1)
        out = await self.inner.process(chunk)
        await self.redis.hincrby(FINISHED, field, 1)
        return out

    async def delete(self, request: Any) -> Any:
        return await self.inner.delete(request)

    async def query(self, q: Any) -> Any:
        return await self.inner.query(q)

    async def close(self) -> None:
        await self.inner.close()
        if self.redis is not None:
            await self.redis.aclose()


def main() -> int:
    from shield_orchestrator.workers import __main__ as entry

    recorder_url = os.environ["FAULTS_RECORDER_URL"]
    real_factory = entry.create_engine

    def recording_factory(settings: Any, *args: Any, **kwargs: Any) -> Any:
        return RecordingEngine(real_factory(settings, *args, **kwargs), recorder_url)

    entry.create_engine = recording_factory  # type: ignore[assignment]
    return int(entry.main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
