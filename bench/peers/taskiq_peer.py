"""taskiq with its Redis Streams broker (taskiq-redis RedisStreamBroker), a no-op task.

Worker: ``taskiq worker taskiq_peer:broker --workers W ...`` (the runner starts it).
Producer: ``python taskiq_peer.py`` speaks bench/peers/_proto.py.
Env: BENCH_REDIS_URL, BENCH_XREAD_COUNT (messages per XREADGROUP).
"""

from __future__ import annotations

import asyncio
import os

import _proto
from taskiq_redis import RedisStreamBroker

URL = os.environ["BENCH_REDIS_URL"]
QUEUE = "bench:taskiq"

broker = RedisStreamBroker(
    url=URL,
    queue_name=QUEUE,
    consumer_group_name="bench",
    consumer_id="0",  # whoever creates the group first, it sees every entry
    xread_count=int(os.environ.get("BENCH_XREAD_COUNT", "100")),
    xread_block=1000,
)


@broker.task(task_name="noop")
async def noop() -> None:
    return None


async def _enqueue(n: int) -> None:
    await _proto.windowed(noop.kiq, n)


def main() -> None:
    _proto.use_uvloop()
    asyncio.run(_proto.serve_async(_enqueue, broker.startup, broker.shutdown))


if __name__ == "__main__":
    main()
