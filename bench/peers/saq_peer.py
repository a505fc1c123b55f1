"""SAQ (Redis queue), a no-op job.

Worker: ``python -m saq saq_peer.settings --workers W`` (the runner starts it).
Producer: ``python saq_peer.py`` speaks bench/peers/_proto.py.
Env: BENCH_REDIS_URL, BENCH_CONCURRENCY (jobs in flight per worker process).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import _proto
from saq import Queue

URL = os.environ["BENCH_REDIS_URL"]
QUEUE_NAME = "bench"

_proto.use_uvloop()
queue = Queue.from_url(URL, name=QUEUE_NAME)


async def noop(ctx: dict[str, Any]) -> None:
    return None


settings = {
    "queue": queue,
    "functions": [noop],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),
}


async def _enqueue(n: int) -> None:
    await _proto.windowed(lambda: queue.enqueue("noop"), n)


async def _startup() -> None:
    await queue.connect()


def main() -> None:
    asyncio.run(_proto.serve_async(_enqueue, _startup, queue.disconnect))


if __name__ == "__main__":
    main()
