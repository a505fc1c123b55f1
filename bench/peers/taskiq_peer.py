"""taskiq with a taskiq-redis broker, a no-op task.

BENCH_TASKIQ_BROKER picks the broker: ``stream`` (RedisStreamBroker: consumer group, XACK after
the task, at-least-once like our pool) or ``list`` (ListQueueBroker: LPUSH/BRPOP, no
acknowledgement, at-most-once).
Worker: ``taskiq worker taskiq_peer:broker --workers W ...`` (the runner starts it).
Producer: ``python taskiq_peer.py`` speaks bench/peers/_proto.py.
Env: BENCH_REDIS_URL, BENCH_TASKIQ_BROKER, BENCH_XREAD_COUNT (messages per XREADGROUP).
"""

from __future__ import annotations

import asyncio
import os

import _proto
from taskiq import AsyncBroker
from taskiq_redis import ListQueueBroker, RedisStreamBroker

URL = os.environ["BENCH_REDIS_URL"]
QUEUE = "bench:taskiq"  # the stream, or the list, by broker


def _broker(kind: str) -> AsyncBroker:
    if kind == "list":
        return ListQueueBroker(url=URL, queue_name=QUEUE)
    if kind != "stream":
        raise SystemExit(f"BENCH_TASKIQ_BROKER must be stream or list, not {kind!r}")
    return RedisStreamBroker(
        url=URL,
        queue_name=QUEUE,
        consumer_group_name="bench",
        consumer_id="0",  # whoever creates the group first, it sees every entry
        xread_count=int(os.environ.get("BENCH_XREAD_COUNT", "100")),
        xread_block=1000,
    )


broker = _broker(os.environ.get("BENCH_TASKIQ_BROKER", "stream"))


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
